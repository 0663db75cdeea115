//! `adamw.cu` through the host emulator against [`adamw_step`]: several steps, f32 and f64, with and
//! without weight decay, bit for bit (same roundings, no contraction), sizes 0, 1 and a partial block.

use super::*;
use crate::cuda_abi::LaunchDims;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::TestRng;

macro_rules! decl {
    ($($name:ident: $t:ty),*) => {
        unsafe extern "C" {
            $(fn $name(
                param: *mut $t,
                grad: *const $t,
                exp_avg: *mut $t,
                exp_avg_sq: *mut $t,
                n: i64,
                decay: f64,
                apply_decay: i32,
                beta1: f64,
                one_minus_beta1: f64,
                beta2: f64,
                one_minus_beta2: f64,
                inv_bias_correction2_sqrt: f64,
                eps: f64,
                step_size: f64,
            );)*
        }
    };
}
decl!(adamw_step_f32: f32, adamw_step_f64: f64);

/// At most 3 blocks of 128 threads (grid-stride loop).
fn few(n: usize) -> LaunchDims {
    LaunchDims::linear(n, 128, 3)
}

macro_rules! run_steps {
    ($kernel:ident, $t:ty, $rng:expr, $h:expr, $n:expr, $dims:expr) => {{
        let n = $n;
        let p0: Vec<$t> = (0..n).map(|_| $rng.uniform() as $t).collect();
        let (mut pc, mut mc, mut vc) = (p0.clone(), vec![0 as $t; n], vec![0 as $t; n]);
        let (mut pg, mut mg, mut vg) = (p0.clone(), vec![0 as $t; n], vec![0 as $t; n]);
        for step in 1..=6u64 {
            // Gradients with exact zeros and a wide range of magnitudes.
            let g: Vec<$t> =
                (0..n)
                    .map(|i| {
                        if i % 7 == 3 { 0.0 } else { ($rng.uniform() * 10f64.powi((i % 9) as i32 - 5)) as $t }
                    })
                    .collect();
            let s = AdamWScalars::new(&$h, step);
            adamw_step(&s, &mut pc, &g, &mut mc, &mut vc);
            let a = cuda::scalar_args(&s);
            let (pp, pgr, pm, pv) = (Ptr::of(&mut pg), CPtr::of(&g), Ptr::of(&mut mg), Ptr::of(&mut vg));
            // SAFETY: all four buffers hold n elements.
            emu::launch($dims(n), || unsafe {
                $kernel(
                    pp.get(),
                    pgr.get(),
                    pm.get(),
                    pv.get(),
                    n as i64,
                    a.0,
                    a.1,
                    a.2,
                    a.3,
                    a.4,
                    a.5,
                    a.6,
                    a.7,
                    a.8,
                )
            })
            .unwrap();
            let bits = |v: &[$t]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let what = format!("{} step {step} n {n} {:?}", stringify!($kernel), $h);
            assert_eq!(bits(&pg), bits(&pc), "param {what}");
            assert_eq!(bits(&mg), bits(&mc), "exp_avg {what}");
            assert_eq!(bits(&vg), bits(&vc), "exp_avg_sq {what}");
        }
    }};
}

#[test]
fn adamw_kernel_is_bit_identical_to_the_reference_over_several_steps() {
    let mut rng = TestRng::new(92);
    for wd in [0.0, 1e-2] {
        let h = AdamWHyper { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd };
        for n in [0usize, 1, 333] {
            run_steps!(adamw_step_f32, f32, rng, h, n, few);
            run_steps!(adamw_step_f64, f64, rng, h, n, few);
        }
        run_steps!(adamw_step_f32, f32, rng, h, 1000, cuda::launch_dims);
    }
    // Unusual hyper-parameters: β₁ = 0, large eps, large lr·wd.
    let h = AdamWHyper { lr: 0.5, beta1: 0.0, beta2: 0.5, eps: 0.1, weight_decay: 1.5 };
    run_steps!(adamw_step_f32, f32, rng, h, 77, few);
    run_steps!(adamw_step_f64, f64, rng, h, 77, few);
}
