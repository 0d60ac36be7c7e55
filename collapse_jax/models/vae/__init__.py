"""The VAE family (Shumailov et al.'s VAE setting on images): `family` is the Model, the other modules its
networks, config parsing, verifier and image metrics."""

# The registry calls collapse_jax.models.vae.make_model and reads its return annotation.
from collapse_jax.models.vae.family import make_model  # noqa: F401
