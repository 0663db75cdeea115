//! The module abstraction: parameters with PyTorch-style dotted names, train/eval mode, freezing.

use autograd::Var;
use tensor::Tensor;

/// A trainable tensor. Holds a leaf [`Var`] (requires grad) or, when frozen, a constant one.
#[derive(Clone, Debug)]
pub struct Param {
    var: Var,
    frozen: bool,
}

impl Param {
    pub fn new(t: Tensor) -> Self {
        Self { var: Var::leaf(t), frozen: false }
    }
    /// Wraps an existing variable (frozen iff it does not require a gradient), e.g. to run a
    /// module on leaves owned by `autograd::gradcheck`.
    pub fn from_var(var: Var) -> Self {
        let frozen = !var.requires_grad();
        Self { var, frozen }
    }
    /// The variable to use in a forward pass.
    pub fn var(&self) -> &Var {
        &self.var
    }
    pub fn value(&self) -> &Tensor {
        self.var.value()
    }
    pub fn grad(&self) -> Option<Tensor> {
        self.var.grad()
    }
    pub fn zero_grad(&self) {
        self.var.zero_grad()
    }
    /// Replaces the value (optimizer step, checkpoint load); shape and dtype must match.
    pub fn set_value(&mut self, t: Tensor) -> autograd::Result<()> {
        self.var.set_value(t)
    }
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }
    /// Stops gradients to this parameter (its forward uses a constant).
    pub fn freeze(&mut self) {
        if !self.frozen {
            self.var = Var::constant(self.var.value().clone());
            self.frozen = true;
        }
    }
    pub fn unfreeze(&mut self) {
        if self.frozen {
            self.var = Var::leaf(self.var.value().clone());
            self.frozen = false;
        }
    }
    pub fn numel(&self) -> usize {
        self.value().numel()
    }
}

/// Joins a parent prefix and a child name with a dot (`""` + `"conv1"` = `"conv1"`).
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// A tree of parameters with dotted names. Composite modules call their children's `visit` with
/// `join(prefix, child_name)`, so names follow PyTorch's `state_dict` keys.
pub trait Module {
    /// Calls `f(name, param)` for every parameter under `prefix`.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param));
    /// Mutable form of [`Module::visit`].
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param));
    /// Switches train/eval mode (dropout); composites forward it to their children.
    fn set_training(&mut self, _training: bool) {}

    /// All parameters with their names, in definition order.
    fn named_params(&self) -> Vec<(String, Param)> {
        let mut out = vec![];
        self.visit("", &mut |n, p| out.push((n.to_string(), p.clone())));
        out
    }
    /// Total number of parameter elements.
    fn num_params(&self) -> usize {
        let mut n = 0;
        self.visit("", &mut |_, p| n += p.numel());
        n
    }
    /// Freezes every parameter.
    fn freeze(&mut self) {
        self.visit_mut("", &mut |_, p| p.freeze());
    }
    fn unfreeze(&mut self) {
        self.visit_mut("", &mut |_, p| p.unfreeze());
    }
    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        self.visit("", &mut |_, p| p.zero_grad());
    }
    /// Moves every parameter's value to `device` (PyTorch's `module.to(device)`). Stops at the
    /// first parameter that cannot be moved and names it; the ones before it are already moved.
    fn to_device(&mut self, device: tensor::Device) -> crate::Result<()> {
        let mut failed = None;
        self.visit_mut("", &mut |name, p| {
            if failed.is_none() {
                let moved =
                    p.value().to_device(device).map_err(autograd::Error::from).and_then(|t| p.set_value(t));
                if let Err(source) = moved {
                    failed = Some(crate::Error::Param { name: name.to_string(), source: Box::new(source) });
                }
            }
        });
        failed.map_or(Ok(()), Err)
    }
}

/// Implements `Module` for a struct by listing its parameter and child-module fields:
/// `impl_module!(ResNet { params: [], children: [norm1, conv1, ...], optional: [conv3] });`
#[macro_export]
macro_rules! impl_module {
    ($ty:ty { params: [$($p:ident),*], children: [$($c:ident),*] $(, optional: [$($o:ident),*])? $(,)? }) => {
        impl $crate::Module for $ty {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &$crate::Param)) {
                $( f(&$crate::join(prefix, stringify!($p)), &self.$p); )*
                $( self.$c.visit(&$crate::join(prefix, stringify!($c)), f); )*
                $($( if let Some(m) = &self.$o { m.visit(&$crate::join(prefix, stringify!($o)), f); } )*)?
            }
            fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut $crate::Param)) {
                $( f(&$crate::join(prefix, stringify!($p)), &mut self.$p); )*
                $( self.$c.visit_mut(&$crate::join(prefix, stringify!($c)), f); )*
                $($( if let Some(m) = &mut self.$o { m.visit_mut(&$crate::join(prefix, stringify!($o)), f); } )*)?
            }
            fn set_training(&mut self, training: bool) {
                let _ = training;
                $( self.$c.set_training(training); )*
                $($( if let Some(m) = &mut self.$o { m.set_training(training); } )*)?
            }
        }
    };
}

/// A list of modules named `0`, `1`, … (PyTorch's `ModuleList`).
impl<M: Module> Module for Vec<M> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        for (i, m) in self.iter().enumerate() {
            m.visit(&join(prefix, &i.to_string()), f);
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, m) in self.iter_mut().enumerate() {
            m.visit_mut(&join(prefix, &i.to_string()), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        for m in self.iter_mut() {
            m.set_training(training);
        }
    }
}

impl<M: Module> Module for Option<M> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(m) = self {
            m.visit(prefix, f);
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(m) = self {
            m.visit_mut(prefix, f);
        }
    }
    fn set_training(&mut self, training: bool) {
        if let Some(m) = self {
            m.set_training(training);
        }
    }
}
