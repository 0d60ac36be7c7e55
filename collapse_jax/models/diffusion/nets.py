"""The learned denoisers' networks: a registry from config.model.score to a builder of a pure `Net` (init, apply(params,
x, t) -> eps_hat), and the residual MLP with a sinusoidal time embedding for low-dimensional data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# Sinusoidal embedding of t in [0, 1]: frequencies 1 ... MAX_FREQUENCY (geometric) of t * TIME_SCALE, as DDPM embeds
# its step index 0 ... 1000 (Ho et al. 2020, Vaswani et al.'s positional code).
TIME_SCALE, MAX_FREQUENCY = 1000.0, 1e4


@dataclasses.dataclass(frozen=True)
class Net:
    """A denoising network as two pure functions: init(key) -> params and apply(params, x [n, ...], t [n]) -> eps_hat
    of x's shape. The training loop and the sampler see only these, so any registered network plugs in."""

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array, jax.Array], jax.Array]


def time_embedding(t: jax.Array, size: int) -> jax.Array:
    """[n, size]: sin and cos of TIME_SCALE t at size / 2 geometric frequencies 1 ... 1 / MAX_FREQUENCY."""
    half = size // 2
    frequencies = jnp.exp(-math.log(MAX_FREQUENCY) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
    angles = TIME_SCALE * t[:, None] * frequencies[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class ResidualMLP(nn.Module):
    """eps_hat(x, t): x -> Dense(width), then `depth` pre-norm residual blocks h + Dense(silu(Dense(LN(h) + e(t)))),
    e(t) a learned projection of the sinusoidal embedding, then LayerNorm and Dense(dim)."""

    width: int
    depth: int
    dim: int

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        embedding = nn.Dense(self.width)(nn.silu(nn.Dense(self.width)(time_embedding(t, self.width))))
        hidden = nn.Dense(self.width)(x)
        for _ in range(self.depth):
            inner = nn.silu(nn.Dense(self.width)(nn.LayerNorm()(hidden) + embedding))
            hidden = hidden + nn.Dense(self.width)(inner)
        return nn.Dense(self.dim)(nn.silu(nn.LayerNorm()(hidden)))


def build_mlp(settings: Any) -> Net:
    """The residual MLP of settings.width, settings.depth on settings.dim-dimensional points."""
    module = ResidualMLP(width=settings.width, depth=settings.depth, dim=settings.dim)
    dummy = (jnp.zeros((1, settings.dim), jnp.float32), jnp.zeros((1,), jnp.float32))
    return Net(init=lambda key: module.init(key, *dummy), apply=module.apply)
