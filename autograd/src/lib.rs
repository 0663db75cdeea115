//! Reverse-mode automatic differentiation over `tensor` ops (issue 3: not built yet).
