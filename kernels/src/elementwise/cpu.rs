//! Generic map drivers: strided inputs, contiguous output, one closure per element.
//!
//! Each driver coalesces the input layouts jointly with the contiguous output layout, splits the
//! output into parallel chunks ([`par_fill`]) and walks each chunk as runs with fixed inner strides
//! ([`Joint::for_each_run`]). Inner stride 1 on every input is a plain zip over slices (the compiler
//! vectorises it); stride 0 hoists the broadcast scalar. All indexing is bounds-checked safe Rust.

use super::iter::{Joint, par_fill};
use crate::StridedLayout;

/// Asserts that `l` is well formed and `len` covers it; `name` names the buffer in the message.
#[track_caller]
pub(crate) fn check_input(name: &str, len: usize, l: &StridedLayout) {
    assert_eq!(
        l.strides.len(),
        l.shape.len(),
        "{name}: layout has {} strides for rank {}",
        l.strides.len(),
        l.shape.len()
    );
    let need = l.required_len();
    assert!(len >= need, "{name}: buffer has {len} elements, layout {:?} needs {need}", l);
}

#[track_caller]
fn check_output(name: &str, len: usize, shape: &[usize]) {
    let n: usize = shape.iter().product();
    assert_eq!(len, n, "{name}: output buffer has {len} elements, shape {shape:?} has {n}");
}

/// `dst[i] = f(a[la(i)])`, `i` in row-major order of `la.shape`.
#[track_caller]
pub(crate) fn map1<A, U, F>(a: &[A], la: &StridedLayout, dst: &mut [U], cost: usize, f: F)
where
    A: Copy + Send + Sync,
    U: Copy + Send,
    F: Fn(A) -> U + Sync + Send,
{
    check_input("a", a.len(), la);
    check_output("dst", dst.len(), &la.shape);
    let ld = StridedLayout::contiguous(&la.shape);
    let Some(joint) = Joint::new([la, &ld]) else { return };
    let [sa, _] = joint.inner_strides();
    par_fill(dst, cost, |start, chunk| {
        let mut pos = 0;
        joint.for_each_run(start, chunk.len(), |[oa, _], run| {
            let d = &mut chunk[pos..pos + run];
            pos += run;
            match sa {
                1 => {
                    for (y, &x) in d.iter_mut().zip(&a[oa..oa + run]) {
                        *y = f(x);
                    }
                }
                0 => d.fill(f(a[oa])),
                _ => {
                    for (k, y) in d.iter_mut().enumerate() {
                        *y = f(a[oa + k * sa]);
                    }
                }
            }
        });
    });
}

/// `dst[i] = f(a[la(i)], b[lb(i)])`; `la` and `lb` have the same shape.
#[track_caller]
pub(crate) fn map2<A, B, U, F>(
    a: &[A],
    la: &StridedLayout,
    b: &[B],
    lb: &StridedLayout,
    dst: &mut [U],
    cost: usize,
    f: F,
) where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send,
    F: Fn(A, B) -> U + Sync + Send,
{
    assert_eq!(la.shape, lb.shape, "map2: operand shapes differ: {:?} vs {:?}", la.shape, lb.shape);
    check_input("a", a.len(), la);
    check_input("b", b.len(), lb);
    check_output("dst", dst.len(), &la.shape);
    let ld = StridedLayout::contiguous(&la.shape);
    let Some(joint) = Joint::new([la, lb, &ld]) else { return };
    let [sa, sb, _] = joint.inner_strides();
    par_fill(dst, cost, |start, chunk| {
        let mut pos = 0;
        joint.for_each_run(start, chunk.len(), |[oa, ob, _], run| {
            let d = &mut chunk[pos..pos + run];
            pos += run;
            match (sa, sb) {
                (1, 1) => {
                    for ((y, &x), &z) in d.iter_mut().zip(&a[oa..oa + run]).zip(&b[ob..ob + run]) {
                        *y = f(x, z);
                    }
                }
                (1, 0) => {
                    let z = b[ob];
                    for (y, &x) in d.iter_mut().zip(&a[oa..oa + run]) {
                        *y = f(x, z);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (y, &z) in d.iter_mut().zip(&b[ob..ob + run]) {
                        *y = f(x, z);
                    }
                }
                (0, 0) => d.fill(f(a[oa], b[ob])),
                _ => {
                    for (k, y) in d.iter_mut().enumerate() {
                        *y = f(a[oa + k * sa], b[ob + k * sb]);
                    }
                }
            }
        });
    });
}

/// `dst[i] = f(a[la(i)], b[lb(i)], c[lc(i)])`; the three layouts have the same shape.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn map3<A, B, C, U, F>(
    a: &[A],
    la: &StridedLayout,
    b: &[B],
    lb: &StridedLayout,
    c: &[C],
    lc: &StridedLayout,
    dst: &mut [U],
    cost: usize,
    f: F,
) where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
    U: Copy + Send,
    F: Fn(A, B, C) -> U + Sync + Send,
{
    assert!(
        la.shape == lb.shape && la.shape == lc.shape,
        "map3: operand shapes differ: {:?}, {:?}, {:?}",
        la.shape,
        lb.shape,
        lc.shape
    );
    check_input("a", a.len(), la);
    check_input("b", b.len(), lb);
    check_input("c", c.len(), lc);
    check_output("dst", dst.len(), &la.shape);
    let ld = StridedLayout::contiguous(&la.shape);
    let Some(joint) = Joint::new([la, lb, lc, &ld]) else { return };
    let [sa, sb, sc, _] = joint.inner_strides();
    par_fill(dst, cost, |start, chunk| {
        let mut pos = 0;
        joint.for_each_run(start, chunk.len(), |[oa, ob, oc, _], run| {
            let d = &mut chunk[pos..pos + run];
            pos += run;
            if sa == 1 && sb == 1 && sc == 1 {
                for (((y, &x), &z), &w) in
                    d.iter_mut().zip(&a[oa..oa + run]).zip(&b[ob..ob + run]).zip(&c[oc..oc + run])
                {
                    *y = f(x, z, w);
                }
            } else {
                for (k, y) in d.iter_mut().enumerate() {
                    *y = f(a[oa + k * sa], b[ob + k * sb], c[oc + k * sc]);
                }
            }
        });
    });
}
