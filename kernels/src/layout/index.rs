//! Index-select along a middle axis (and its backward), and elementwise `where`.

use crate::elementwise::cpu::{check_input, map3};
use crate::{Float, StridedLayout, parallel};

/// Resolves every index into `0..n` (negative `i` in `-n..0` means `i + n`), or the position of
/// the first one out of range.
fn resolve(idx: &[i64], n: usize) -> Result<Vec<usize>, usize> {
    idx.iter()
        .enumerate()
        .map(|(pos, &i)| {
            let r = if i < 0 { i + n as i64 } else { i };
            if r >= 0 && (r as u64) < n as u64 { Ok(r as usize) } else { Err(pos) }
        })
        .collect()
}

/// Gathers rows along the middle axis: `dst[o, j, :] = src[o, idx[j], :]`.
///
/// `src`: contiguous `[outer, n, inner]`; `dst`: contiguous `[outer, idx.len(), inner]`,
/// overwritten. Indices may be in `-n..n`; a negative index counts from the end (`i + n`), as in
/// Python/PyTorch indexing (`torch.index_select` itself rejects negatives; the wider rule is ours).
/// Returns `Err(position in idx)` of the first index out of range, before writing anything.
pub fn index_select<T: Copy + Send + Sync>(
    outer: usize,
    n: usize,
    inner: usize,
    src: &[T],
    idx: &[i64],
    dst: &mut [T],
) -> Result<(), usize> {
    assert_eq!(
        src.len(),
        outer * n * inner,
        "index_select: src has {} elements, expected outer*n*inner = {outer}*{n}*{inner}",
        src.len()
    );
    let m = idx.len();
    assert_eq!(
        dst.len(),
        outer * m * inner,
        "index_select: dst has {} elements, expected outer*len(idx)*inner = {outer}*{m}*{inner}",
        dst.len()
    );
    let rows = resolve(idx, n)?;
    if dst.is_empty() {
        return Ok(());
    }
    parallel::par_chunks_mut(dst, inner, dst.len(), |r, row| {
        let (o, j) = (r / m, r % m);
        row.copy_from_slice(&src[(o * n + rows[j]) * inner..][..inner]);
    });
    Ok(())
}

/// Backward of [`index_select`]: `dsrc[o, i, :] = Σ_{j : idx[j] ≡ i} dy[o, j, :]` (duplicates add
/// up, in increasing `j`). `dy`: `[outer, idx.len(), inner]`; `dsrc`: `[outer, n, inner]`,
/// overwritten (zeroed, then accumulated). Same index rule and error as [`index_select`]; on error
/// nothing is written.
pub fn index_select_backward<T: Float>(
    outer: usize,
    n: usize,
    inner: usize,
    dy: &[T],
    idx: &[i64],
    dsrc: &mut [T],
) -> Result<(), usize> {
    let m = idx.len();
    assert_eq!(
        dy.len(),
        outer * m * inner,
        "index_select_backward: dy has {} elements, expected outer*len(idx)*inner = {outer}*{m}*{inner}",
        dy.len()
    );
    assert_eq!(
        dsrc.len(),
        outer * n * inner,
        "index_select_backward: dsrc has {} elements, expected outer*n*inner = {outer}*{n}*{inner}",
        dsrc.len()
    );
    let rows = resolve(idx, n)?;
    if dsrc.is_empty() {
        return Ok(());
    }
    parallel::par_chunks_mut(dsrc, n * inner, dsrc.len() + dy.len(), |o, slab| {
        slab.fill(T::ZERO);
        for (j, &i) in rows.iter().enumerate() {
            let g = &dy[(o * m + j) * inner..][..inner];
            for (d, &v) in slab[i * inner..][..inner].iter_mut().zip(g) {
                *d += v;
            }
        }
    });
    Ok(())
}

/// `dst = cond ? a : b` elementwise (`cond != 0` is true). `cond`, `a`, `b` are read through
/// layouts already broadcast to one shape (see [`crate::elementwise::broadcast_layout`]); `dst`
/// is contiguous of that shape, overwritten.
pub fn where_select<T: Copy + Send + Sync>(
    cond: &[u8],
    lc: &StridedLayout,
    a: &[T],
    la: &StridedLayout,
    b: &[T],
    lb: &StridedLayout,
    dst: &mut [T],
) {
    check_input("where_select: cond", cond.len(), lc);
    check_input("where_select: a", a.len(), la);
    check_input("where_select: b", b.len(), lb);
    map3(cond, lc, a, la, b, lb, dst, 1, |c: u8, x: T, y: T| if c != 0 { x } else { y });
}
