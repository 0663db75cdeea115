//! The op registry: every differentiable op, once. `Var::from_op` refuses a node whose op is not
//! listed here, the graph export reads each node's family from it, and the gradcheck coverage test
//! enumerates it and fails for any op without a gradient check.

/// One differentiable op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// Name recorded on nodes.
    pub name: &'static str,
    /// The module in `ops/` holding its forward and backward.
    pub family: &'static str,
}

const fn op(name: &'static str, family: &'static str) -> OpInfo {
    OpInfo { name, family }
}

/// Every op with a backward rule.
pub const OPS: &[OpInfo] = &[
    // ops/unary.rs
    op("neg", "unary"),
    op("abs", "unary"),
    op("exp", "unary"),
    op("log", "unary"),
    op("sqrt", "unary"),
    op("rsqrt", "unary"),
    op("sqr", "unary"),
    op("recip", "unary"),
    op("tanh", "unary"),
    op("sigmoid", "unary"),
    op("silu", "unary"),
    op("gelu", "unary"),
    op("gelu_tanh", "unary"),
    op("relu", "unary"),
    op("sin", "unary"),
    op("cos", "unary"),
    op("erf", "unary"),
    op("powf", "unary"),
    op("affine", "unary"),
    op("clamp", "unary"),
    // ops/binary.rs
    op("add", "binary"),
    op("sub", "binary"),
    op("mul", "binary"),
    op("div", "binary"),
    op("pow", "binary"),
    op("maximum", "binary"),
    op("minimum", "binary"),
    // ops/reduce.rs
    op("sum", "reduce"),
    op("mean", "reduce"),
    op("max", "reduce"),
    op("min", "reduce"),
    op("var", "reduce"),
    // ops/matmul.rs
    op("matmul", "matmul"),
    // ops/conv.rs
    op("conv2d", "conv"),
    // ops/norm.rs
    op("group_norm", "norm"),
    op("layer_norm", "norm"),
    op("group_norm_silu", "norm"),
    // ops/softmax.rs
    op("softmax", "softmax"),
    op("log_softmax", "softmax"),
    // ops/attention.rs
    op("attention", "attention"),
    // ops/dual_attention.rs
    op("dual_attention", "attention"),
    // ops/views.rs
    op("reshape", "views"),
    op("permute", "views"),
    op("narrow", "views"),
    op("expand", "views"),
    op("cat", "views"),
    op("index_select", "views"),
    op("to_dtype", "views"),
    // ops/spatial.rs
    op("upsample_nearest2d", "spatial"),
    op("avg_pool2d", "spatial"),
    op("where", "spatial"),
    op("masked_fill", "spatial"),
    // ops/loss.rs
    op("mse_loss", "loss"),
];

/// The registry entry of an op name.
pub fn lookup(name: &str) -> Option<&'static OpInfo> {
    OPS.iter().find(|o| o.name == name)
}
