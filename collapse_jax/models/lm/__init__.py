"""The language-model family (Shumailov et al.'s OPT-125m fine-tuning setting): `family` is the Model,
the other modules its transformer, training, decoding, watermark and text metrics."""

# The registry calls collapse_jax.models.lm.make_model and reads its return annotation.
from collapse_jax.models.lm.family import make_model  # noqa: F401
