//! Neural-network modules, optimizers and checkpoints (issue 4: not built yet).
