"""Moved to collapse_jax.host.runner; this re-export keeps `collapse_jax.runner` working for notebooks."""

from collapse_jax.host.runner import *  # noqa: F403
from collapse_jax.host.runner import __doc__ as _moved_doc  # noqa: F401
