//! `elementwise.cu` through the host emulator, against the CPU kernels of this family: every op, f32
//! and f64, strided and broadcast inputs, plus the f16/bf16 storage paths.
//!
//! Tolerances: the CPU kernels and the CUDA math library differ in the last bits of exp/tanh/erf and
//! of powf; f32 results agree to 2e-6 relative (1e-6 absolute near zero), f64 to 1e-13. The 16-bit
//! kernels compute in f32 and round once, so they match the f32 result rounded to the dtype to one
//! unit in the last place.

use super::tests::random_view;
use super::*;
use crate::cuda_abi::StridedArg;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{TestRng, Tolerance, assert_close};

type Bits16 = u16;

unsafe extern "C" {
    fn unary_f32(x: *const f32, xl: StridedArg, y: *mut f32, n: i64, op: i32, p0: f64, p1: f64);
    fn unary_f64(x: *const f64, xl: StridedArg, y: *mut f64, n: i64, op: i32, p0: f64, p1: f64);
    fn unary_bf16(x: *const Bits16, xl: StridedArg, y: *mut Bits16, n: i64, op: i32, p0: f64, p1: f64);
    fn unary_f16(x: *const Bits16, xl: StridedArg, y: *mut Bits16, n: i64, op: i32, p0: f64, p1: f64);
    fn unary_backward_f32(
        x: *const f32,
        xl: StridedArg,
        dy: *const f32,
        dx: *mut f32,
        n: i64,
        op: i32,
        p0: f64,
        p1: f64,
    );
    fn unary_backward_f64(
        x: *const f64,
        xl: StridedArg,
        dy: *const f64,
        dx: *mut f64,
        n: i64,
        op: i32,
        p0: f64,
        p1: f64,
    );
    fn binary_f32(a: *const f32, al: StridedArg, b: *const f32, bl: StridedArg, y: *mut f32, n: i64, op: i32);
    fn binary_f64(a: *const f64, al: StridedArg, b: *const f64, bl: StridedArg, y: *mut f64, n: i64, op: i32);
    fn compare_f32(a: *const f32, al: StridedArg, b: *const f32, bl: StridedArg, y: *mut u8, n: i64, op: i32);
}

const OPS: [UnaryOp; 21] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Sqr,
    UnaryOp::Recip,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::Gelu,
    UnaryOp::GeluTanh,
    UnaryOp::Relu,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Erf,
    UnaryOp::Sign,
    UnaryOp::Powf(1.7),
    UnaryOp::Affine { mul: -1.5, add: 0.25 },
    UnaryOp::Clamp { min: -0.5, max: 0.75 },
];

fn positive(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_))
}

fn buffer(rng: &mut TestRng, len: usize, pos: bool) -> Vec<f64> {
    (0..len).map(|_| if pos { rng.uniform().abs() * 3.0 + 0.1 } else { rng.uniform() * 3.0 }).collect()
}

const F32_TOL: Tolerance = Tolerance::new(2e-6, 1e-6);
const F64_TOL: Tolerance = Tolerance::new(1e-13, 1e-14);

#[test]
fn unary_forward_and_backward_match_the_cpu_kernels_on_strided_views() {
    let mut rng = TestRng::new(61);
    // 3-d permuted/stepped view, with more elements than one block so the grid stride is exercised.
    let shape = [5, 7, 11];
    for op in OPS {
        let l = random_view(&mut rng, &shape);
        let src64 = buffer(&mut rng, l.required_len(), positive(op));
        let src32: Vec<f32> = src64.iter().map(|&v| v as f32).collect();
        let n = l.numel();
        let arg = StridedArg::from_layout(&l).unwrap();
        let (code, p0, p1) = op.cuda_code();
        let dims = cuda::launch_dims(n);

        let mut want32 = vec![0f32; n];
        unary(op, &src32, &l, &mut want32);
        let mut got32 = vec![0f32; n];
        let (x, y) = (CPtr::of(&src32), Ptr::of(&mut got32));
        // SAFETY: x covers the layout, y holds n elements.
        emu::launch(dims, || unsafe { unary_f32(x.get(), arg, y.get(), n as i64, code, p0, p1) }).unwrap();
        assert_close(&format!("unary_f32 {op:?}"), &got32, &want32, F32_TOL);

        let mut want64 = vec![0f64; n];
        unary(op, &src64, &l, &mut want64);
        let mut got64 = vec![0f64; n];
        let (x, y) = (CPtr::of(&src64), Ptr::of(&mut got64));
        // SAFETY: as above.
        emu::launch(dims, || unsafe { unary_f64(x.get(), arg, y.get(), n as i64, code, p0, p1) }).unwrap();
        assert_close(&format!("unary_f64 {op:?}"), &got64, &want64, F64_TOL);

        let dy: Vec<f64> = buffer(&mut rng, n, false);
        let mut want = vec![0f64; n];
        unary_backward(op, &src64, &l, &dy, &mut want);
        let mut got = vec![0f64; n];
        let (x, g, d) = (CPtr::of(&src64), CPtr::of(&dy), Ptr::of(&mut got));
        // SAFETY: x covers the layout; dy and dx hold n elements.
        emu::launch(dims, || unsafe {
            unary_backward_f64(x.get(), arg, g.get(), d.get(), n as i64, code, p0, p1)
        })
        .unwrap();
        assert_close(&format!("unary_backward_f64 {op:?}"), &got, &want, Tolerance::new(1e-12, 1e-13));

        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; n];
        unary_backward(op, &src32, &l, &dy32, &mut want);
        let mut got = vec![0f32; n];
        let (x, g, d) = (CPtr::of(&src32), CPtr::of(&dy32), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(dims, || unsafe {
            unary_backward_f32(x.get(), arg, g.get(), d.get(), n as i64, code, p0, p1)
        })
        .unwrap();
        assert_close(&format!("unary_backward_f32 {op:?}"), &got, &want, Tolerance::new(1e-5, 1e-6));
    }
}

#[test]
fn sixteen_bit_storage_computes_in_f32_and_rounds_once() {
    use half::{bf16, f16};
    let mut rng = TestRng::new(62);
    let l = random_view(&mut rng, &[6, 9]);
    let src = buffer(&mut rng, l.required_len(), true);
    let n = l.numel();
    let arg = StridedArg::from_layout(&l).unwrap();
    for op in [UnaryOp::Exp, UnaryOp::Sqrt, UnaryOp::Gelu, UnaryOp::Affine { mul: 3.0, add: -1.0 }] {
        let (code, p0, p1) = op.cuda_code();
        let xb: Vec<u16> = src.iter().map(|&v| bf16::from_f64(v).to_bits()).collect();
        let xh: Vec<u16> = src.iter().map(|&v| f16::from_f64(v).to_bits()).collect();
        let (mut yb, mut yh) = (vec![0u16; n], vec![0u16; n]);
        let (x, y) = (CPtr::of(&xb), Ptr::of(&mut yb));
        // SAFETY: x covers the layout, y holds n elements.
        emu::launch(cuda::launch_dims(n), || unsafe {
            unary_bf16(x.get(), arg, y.get(), n as i64, code, p0, p1)
        })
        .unwrap();
        let (x, y) = (CPtr::of(&xh), Ptr::of(&mut yh));
        // SAFETY: as above.
        emu::launch(cuda::launch_dims(n), || unsafe {
            unary_f16(x.get(), arg, y.get(), n as i64, code, p0, p1)
        })
        .unwrap();
        // Expected: widen the stored 16-bit input, compute in f32 on the CPU, round to the dtype.
        let wb: Vec<f32> = xb.iter().map(|&b| bf16::from_bits(b).to_f32()).collect();
        let wh: Vec<f32> = xh.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
        let (mut eb, mut eh) = (vec![0f32; n], vec![0f32; n]);
        unary(op, &wb, &l, &mut eb);
        unary(op, &wh, &l, &mut eh);
        let gb: Vec<f64> = yb.iter().map(|&b| bf16::from_bits(b).to_f64()).collect();
        let gh: Vec<f64> = yh.iter().map(|&b| f16::from_bits(b).to_f64()).collect();
        assert_close(&format!("unary_bf16 {op:?}"), &gb, &eb, Tolerance::new(8e-3, 1e-6));
        assert_close(&format!("unary_f16 {op:?}"), &gh, &eh, Tolerance::new(1e-3, 1e-6));
    }
}

#[test]
fn binary_and_compare_broadcast_like_the_cpu_kernels() {
    let mut rng = TestRng::new(63);
    let out_shape = [4usize, 6, 5];
    for (sa, sb) in [([4usize, 6, 5], [1usize, 6, 1]), ([4, 1, 5], [4, 6, 5]), ([1, 1, 1], [4, 6, 5])] {
        let la0 = random_view(&mut rng, &sa);
        let lb0 = random_view(&mut rng, &sb);
        let la = broadcast_layout(&la0, &out_shape).unwrap();
        let lb = broadcast_layout(&lb0, &out_shape).unwrap();
        let a = buffer(&mut rng, la0.required_len(), true);
        let b = buffer(&mut rng, lb0.required_len(), false);
        let n = la.numel();
        let (aa, ba) = (StridedArg::from_layout(&la).unwrap(), StridedArg::from_layout(&lb).unwrap());
        let dims = cuda::launch_dims(n);
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Pow,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
        ] {
            let code = op.cuda_code();
            let mut want = vec![0f64; n];
            binary(op, &a, &la, &b, &lb, &mut want);
            let mut got = vec![0f64; n];
            let (pa, pb, py) = (CPtr::of(&a), CPtr::of(&b), Ptr::of(&mut got));
            // SAFETY: a and b cover their layouts, y holds n elements.
            emu::launch(dims, || unsafe { binary_f64(pa.get(), aa, pb.get(), ba, py.get(), n as i64, code) })
                .unwrap();
            assert_close(&format!("binary_f64 {op:?} {sa:?} {sb:?}"), &got, &want, F64_TOL);

            let (a32, b32): (Vec<f32>, Vec<f32>) =
                (a.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect());
            let mut want = vec![0f32; n];
            binary(op, &a32, &la, &b32, &lb, &mut want);
            let mut got = vec![0f32; n];
            let (pa, pb, py) = (CPtr::of(&a32), CPtr::of(&b32), Ptr::of(&mut got));
            // SAFETY: as above.
            emu::launch(dims, || unsafe { binary_f32(pa.get(), aa, pb.get(), ba, py.get(), n as i64, code) })
                .unwrap();
            assert_close(&format!("binary_f32 {op:?} {sa:?} {sb:?}"), &got, &want, F32_TOL);
        }
        let (a32, b32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&v| (v * 2.0).round() as f32).collect(),
            b.iter().map(|&v| (v * 2.0).round() as f32).collect(),
        );
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
            let mut want = vec![0u8; n];
            compare(op, &a32, &la, &b32, &lb, &mut want);
            let mut got = vec![7u8; n];
            let (pa, pb, py) = (CPtr::of(&a32), CPtr::of(&b32), Ptr::of(&mut got));
            // SAFETY: as above.
            emu::launch(dims, || unsafe {
                compare_f32(pa.get(), aa, pb.get(), ba, py.get(), n as i64, op.cuda_code())
            })
            .unwrap();
            assert_eq!(got, want, "compare_f32 {op:?} {sa:?} {sb:?}");
        }
    }
}

#[test]
fn nan_propagation_matches_the_cpu_conventions() {
    let x = [f32::NAN, -0.0, 0.0, 2.0, -2.0];
    let l = StridedLayout::contiguous(&[5]);
    let arg = StridedArg::from_layout(&l).unwrap();
    for op in [UnaryOp::Relu, UnaryOp::Sign, UnaryOp::Abs, UnaryOp::Clamp { min: -1.0, max: 1.0 }] {
        let mut want = [0f32; 5];
        unary(op, &x, &l, &mut want);
        let mut got = [0f32; 5];
        let (px, py) = (CPtr::of(&x), Ptr::of(&mut got));
        let (code, p0, p1) = op.cuda_code();
        // SAFETY: five elements each.
        emu::launch(cuda::launch_dims(5), || unsafe { unary_f32(px.get(), arg, py.get(), 5, code, p0, p1) })
            .unwrap();
        let bits =
            |v: &[f32]| v.iter().map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() }).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{op:?}");
    }
}
