//! Matryoshka Diffusion Models: NestedUNet, schedules, trainer, samplers (issues 4 and 5: not built yet).
