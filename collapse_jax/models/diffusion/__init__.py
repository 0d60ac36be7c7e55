"""The diffusion family (variance-preserving forward process, DDPM / DDIM samplers): `family` is the Model, `sampling`
its schedules, denoisers and samplers, `metrics` its distribution and memorization metrics."""

# The registry calls collapse_jax.models.diffusion.make_model and reads its return annotation.
from collapse_jax.models.diffusion.family import make_model  # noqa: F401
