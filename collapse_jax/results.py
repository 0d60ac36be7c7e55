"""Moved to collapse_jax.analysis.results; this re-export keeps `collapse_jax.results` working for notebooks."""

from collapse_jax.analysis.results import *  # noqa: F403
from collapse_jax.analysis.results import __doc__ as _moved_doc  # noqa: F401
