"""collapse_jax: simulate model collapse for many independent chains in one compiled JAX program."""

__version__ = "0.1.0"
