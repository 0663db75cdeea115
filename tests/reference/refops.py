"""Shared pieces of the reference generator: the safetensors writer, seeded inputs, and the ops
whose semantics are PyTorch's, written out in JAX."""
import json
import zlib

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from jax import lax

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_enable_x64", False)
_ST_DTYPES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64",
    np.dtype(np.float16): "F16",
    np.dtype(ml_dtypes.bfloat16): "BF16",
    np.dtype(np.int64): "I64",
    np.dtype(np.uint8): "U8",
}


def write_safetensors(path, tensors, metadata):
    """Writes the safetensors format by hand: u64 LE header length, JSON header, raw LE data."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], order="C")  # keeps 0-d shapes (ascontiguousarray makes them 1-d)
        raw = arr.tobytes()
        header[name] = {
            "dtype": _ST_DTYPES[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hbytes).to_bytes(8, "little"))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def unif(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def away(rng, shape, lo=0.1, hi=2.0):
    """Values with |x| in [lo, hi] and random sign: away from kinks at 0."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def pos(rng, shape):
    return unif(rng, shape, 0.5, 2.0)


# ---- reference semantics (PyTorch's, written in JAX) ------------------------------------------

def group_norm(x, g, b, groups, eps):
    n, c = x.shape[:2]
    xr = x.reshape(n, groups, -1)
    m = xr.mean(-1, keepdims=True)
    v = ((xr - m) ** 2).mean(-1, keepdims=True)  # biased variance
    y = ((xr - m) / jnp.sqrt(v + eps)).reshape(x.shape)
    bshape = (1, c) + (1,) * (x.ndim - 2)
    return y * g.reshape(bshape) + b.reshape(bshape)


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + eps) * g + b


def conv2d(x, w, b, stride, padding, groups):
    y = lax.conv_general_dilated(
        x, w, window_strides=stride, padding=[(padding[0],) * 2, (padding[1],) * 2],
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
        precision=lax.Precision.HIGHEST)
    return y + b.reshape(1, -1, 1, 1)


def attention(q, k, v, mask, scale):
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=lax.Precision.HIGHEST) * scale
    if mask is not None:
        s = jnp.where(mask[:, None, None, :] != 0, s, -jnp.inf)
    p = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("bhqk,bhkd->bhqd", p, v, precision=lax.Precision.HIGHEST)


def upsample_nearest(x, oh, ow):
    # PyTorch mode='nearest': src = floor(dst * in / out).
    h, w = x.shape[-2:]
    ih = np.floor(np.arange(oh) * (h / oh)).astype(np.int64)
    iw = np.floor(np.arange(ow) * (w / ow)).astype(np.int64)
    return x[..., ih, :][..., :, iw]


def avg_pool2d(x, k, s, p, count_include_pad):
    pad = [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])]
    win = (1, 1) + tuple(k)
    strides = (1, 1) + tuple(s)
    tot = lax.reduce_window(x, 0.0, lax.add, win, strides, pad)
    if count_include_pad:
        return tot / (k[0] * k[1])
    cnt = lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, win, strides, pad)
    return tot / cnt


def mse(a, b, reduction):
    d = (a - b) ** 2
    return d.mean() if reduction == "mean" else d.sum()


