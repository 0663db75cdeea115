"""Model-level references (mdm-spec §3.1), written in JAX from the spec with PyTorch's weight
layouts (Linear weight [out, in], conv weight [out, in, kh, kw]) and parameter names (§8), and
AdamW steps from optax. Imported by generate.py."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from refops import conv2d, group_norm, layer_norm, unif

HI = lax.Precision.HIGHEST


def linear(x, p, name, bias=True):
    y = jnp.matmul(x, p[name + ".weight"].T, precision=HI)
    return y + p[name + ".bias"] if bias else y


def conv(x, p, name, pad):
    return conv2d(x, p[name + ".weight"], p[name + ".bias"], (1, 1), (pad, pad), 1)


def gn(x, p, name, groups):
    return group_norm(x, p[name + ".weight"], p[name + ".bias"], groups, 1e-5)


def resnet(p, x, temb, groups):
    out = p["conv1.weight"].shape[0]
    h = conv(jax.nn.silu(gn(x, p, "norm1", groups)), p, "conv1", 1)
    t = linear(jax.nn.silu(temb), p, "time_layer")
    a, b = t[:, :out, None, None], t[:, out:, None, None]
    h = jax.nn.silu(gn(h, p, "norm2", groups) * (1 + a) + b)
    h = conv(h, p, "conv2", 1)
    skip = conv(x, p, "conv3", 0) if "conv3.weight" in p else x
    return skip + h


def heads(x, nh):
    # [B, C, T] -> [B, heads, T, C/heads]; head h takes channels [h*C/8, (h+1)*C/8).
    b, c, t = x.shape
    return x.reshape(b, nh, c // nh, t).transpose(0, 1, 3, 2)


def sdpa(q, k, v, mask, s):
    sc = jnp.einsum("bhqd,bhkd->bhqk", q * s, k * s, precision=HI)
    if mask is not None:
        sc = jnp.where(mask[:, None, None, :] != 0, sc, -jnp.inf)
    return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(sc, -1), v, precision=HI)


def attention_block(p, x, cond, mask):
    b, c, hh, ww = x.shape
    nh = 8
    s = (c / nh) ** -0.25  # applied to both q and k (spec §3.1)
    n = gn(x, p, "norm", 32)
    qkv = conv(n, p, "qkv", 0).reshape(b, 3 * c, hh * ww)
    q, k, v = (heads(qkv[:, i * c:(i + 1) * c], nh) for i in range(3))
    h = sdpa(q, k, v, None, s)
    cn = layer_norm(cond, p["norm_cond.weight"], p["norm_cond.bias"], 1e-5)
    kv = linear(cn, p, "kv_cond").transpose(0, 2, 1)  # [B, 2C, L]
    h = h + sdpa(q, heads(kv[:, :c], nh), heads(kv[:, c:], nh), mask, s)
    h = h.transpose(0, 1, 3, 2).reshape(b, c, hh, ww)
    out = x + conv(h, p, "proj_out", 0)
    f = conv(gn(out, p, "ffn.0", 32), p, "ffn.1", 0)
    f = conv(jax.nn.gelu(f, approximate=False), p, "ffn.3", 0)
    return out + f


def temb_features(t, d_t):
    half = d_t // 8
    f = np.exp(-math.log(10000.0) * np.arange(half) / half).astype(np.float32)
    arg = t.astype(np.float32)[:, None] * f[None, :]
    return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], 1)


def temb(p, t, d_t):
    h = linear(temb_features(t, d_t), p, "temb_layer1")
    return linear(jax.nn.silu(h), p, "temb_layer2")


def params(r, shapes):
    """PyTorch-default-like uniform weights (no zero init, so every branch is exercised);
    norm weights around 1."""
    out = {}
    for name, shp in shapes.items():
        if name.startswith(("norm", "ffn.0")) and name.endswith(".weight"):
            out[name] = unif(r, shp, 0.5, 1.5)
        else:
            fan_in = int(np.prod(shp[1:])) if len(shp) > 1 else shp[0]
            bnd = 1.0 / math.sqrt(fan_in)
            out[name] = unif(r, shp, -bnd, bnd)
    return out


def with_grads(fn, p, inputs, r):
    """Forward, seeded output gradient, and the gradients of parameters and inputs."""
    y, vjp = jax.vjp(fn, p, *inputs)
    gout = r.uniform(-1, 1, size=y.shape).astype(np.float32)
    g = vjp(jnp.asarray(gout))
    t = {"io.out": np.asarray(y), "io.gout": gout}
    for k, v in g[0].items():
        t[f"grad.{k}"] = np.asarray(v)
    for k in p:
        t[f"param.{k}"] = np.asarray(p[k])
    return t, g[1:]


def resnet_fixture(r):
    cin, cout, dt, groups = 8, 16, 16, 4
    shapes = {
        "norm1.weight": (cin,), "norm1.bias": (cin,),
        "conv1.weight": (cout, cin, 3, 3), "conv1.bias": (cout,),
        "time_layer.weight": (2 * cout, dt), "time_layer.bias": (2 * cout,),
        "norm2.weight": (cout,), "norm2.bias": (cout,),
        "conv2.weight": (cout, cout, 3, 3), "conv2.bias": (cout,),
        "conv3.weight": (cout, cin, 1, 1), "conv3.bias": (cout,),
    }
    p = params(r, shapes)
    x, te = unif(r, (2, cin, 4, 4)), unif(r, (2, dt))
    t, (gx, gt) = with_grads(lambda p, x, te: resnet(p, x, te, groups), p, [x, te], r)
    t.update({"io.x": x, "io.temb": te, "io.grad_x": np.asarray(gx), "io.grad_temb": np.asarray(gt)})
    return t


def attention_fixture(r):
    c, dc, length = 32, 8, 5
    shapes = {
        "norm.weight": (c,), "norm.bias": (c,),
        "qkv.weight": (3 * c, c, 1, 1), "qkv.bias": (3 * c,),
        "norm_cond.weight": (dc,), "norm_cond.bias": (dc,),
        "kv_cond.weight": (2 * c, dc), "kv_cond.bias": (2 * c,),
        "proj_out.weight": (c, c, 1, 1), "proj_out.bias": (c,),
        "ffn.0.weight": (c,), "ffn.0.bias": (c,),
        "ffn.1.weight": (4 * c, c, 1, 1), "ffn.1.bias": (4 * c,),
        "ffn.3.weight": (c, 4 * c, 1, 1), "ffn.3.bias": (c,),
    }
    p = params(r, shapes)
    x, cond = unif(r, (2, c, 2, 3)), unif(r, (2, length, dc))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=np.uint8)
    t, (gx, gc) = with_grads(lambda p, x, cd: attention_block(p, x, cd, mask), p, [x, cond], r)
    t.update({"io.x": x, "io.cond": cond, "io.mask": mask,
              "io.grad_x": np.asarray(gx), "io.grad_cond": np.asarray(gc)})
    return t


def temb_fixture(r):
    dt = 32
    shapes = {"temb_layer1.weight": (dt, dt // 4), "temb_layer1.bias": (dt,),
              "temb_layer2.weight": (dt, dt), "temb_layer2.bias": (dt,)}
    p = params(r, shapes)
    tv = np.array([0.0, 1.0, 17.5, 999.0], dtype=np.float32)
    t, _ = with_grads(lambda p: temb(p, tv, dt), p, [], r)
    t["io.t"] = tv
    return t


ADAMW = dict(lr=0.05, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1, steps=4)


def adamw_fixture(r):
    """A Linear(3 -> 4)'s parameters after ADAMW['steps'] optax.adamw steps with given gradients."""
    p = {"weight": unif(r, (4, 3)), "bias": unif(r, (4,))}
    c = ADAMW
    opt = optax.adamw(c["lr"], b1=c["b1"], b2=c["b2"], eps=c["eps"], weight_decay=c["weight_decay"])
    state = opt.init(p)
    t = {f"param.{k}": v for k, v in p.items()}
    cur = {k: jnp.asarray(v) for k, v in p.items()}
    for s in range(c["steps"]):
        # Gradients of very different scales (incl. tiny ones), so eps and bias correction matter.
        g = {k: (unif(r, v.shape) * 10.0 ** r.integers(-6, 1)).astype(np.float32) for k, v in p.items()}
        upd, state = opt.update(g, state, cur)
        cur = optax.apply_updates(cur, upd)
        for k in p:
            t[f"step{s}.grad.{k}"] = g[k]
            t[f"step{s}.param.{k}"] = np.asarray(cur[k])
    return t


# Schedules (spec §2.3, §2.4), float64 numpy in ml-mdm's own formulation: the shift divides the SNR
# (γ_s = 1 / (1 + (1−γ)/γ · s^p)), where ours shifts logSNR and applies a sigmoid.
SHIFTS = [(4.0, 1.0), (4.0, 2.0), (16.0, 2.0)]


def _deepfloyd(n):
    def abar(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = [min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)]
    return np.cumprod(np.concatenate([[1.0], 1.0 - np.array(betas)]))


def _cosine(n):
    lmin, lmax = -5.0, 5.0
    b = math.atan(math.exp(-lmax / 2))
    a = math.atan(math.exp(-lmin / 2)) - b
    logsnr = -2 * np.log(np.tan(a * np.linspace(0, 1, n) + b))
    return np.concatenate([[1.0], 1 / (1 + np.exp(-logsnr))])


def _ddpm(n):
    return np.cumprod(np.concatenate([[1.0], 1.0 - np.linspace(1e-4, 0.02, n)]))


def _shift(g, s, p):
    with np.errstate(divide="ignore"):
        snr = g / (1 - g)
        return 1 / (1 + 1 / (snr / s ** p))


def schedule_fixture():
    t = {}
    for kind, f in [("deepfloyd", _deepfloyd), ("cosine", _cosine), ("ddpm", _ddpm)]:
        for n in (32, 1000):
            g = f(n)
            t[f"{kind}.{n}"] = g
            if kind == "deepfloyd":
                for s, p in SHIFTS:
                    t[f"{kind}.{n}.shift{s:g}_p{p:g}"] = _shift(g, s, p)
    return t
