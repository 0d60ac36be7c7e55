"""The Gaussian family's true distributions (its expressivity switch): N(mu0, s^2), the two-component mixture
0.5 N(mu0 - a, s^2) + 0.5 N(mu0 + a, s^2) (Shumailov et al. 2024's example) and the Student-t mu0 + s T_nu.

Host-side float64 constants (moments, tail quantiles, the W2 coupling constant) are computed once per family build;
`sample` is the jnp draw. The mixture and Student-t truths are one-dimensional.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special  # a dependency of jax itself; host-side float64 only

from collapse_jax.models import _metrics as metrics

TRUTHS = ("gaussian", "mixture", "student_t")


@dataclasses.dataclass(frozen=True)
class Truth:
    """One true distribution, symmetric about its location `mean` (so its mean is `mean`)."""

    kind: str
    mean: float  # mu0 (every coordinate)
    scale: float  # s
    separation: float = 0.0  # a (mixture)
    dof: float = math.inf  # nu (student_t)

    @property
    def variance(self) -> float:
        """Per-coordinate variance: s^2; s^2 + a^2 (law of total variance); s^2 nu / (nu - 2) (nu > 2)."""
        if self.kind == "mixture":
            return self.scale**2 + self.separation**2
        if self.kind == "student_t":
            return self.scale**2 * self.dof / (self.dof - 2.0)
        return self.scale**2

    def sample(self, key: jax.Array, shape: tuple[int, int]) -> jax.Array:
        """Draws of the truth, [n, d]; the Gaussian draw is the one the family always made (same bits)."""
        if self.kind == "gaussian":
            return self.mean + self.scale * jax.random.normal(key, shape)
        if self.kind == "student_t":
            return self.mean + self.scale * jax.random.t(key, self.dof, shape)
        sign_key, noise_key = jax.random.split(key)
        sign = jnp.where(jax.random.bernoulli(sign_key, 0.5, shape), 1.0, -1.0)
        return self.mean + self.separation * sign + self.scale * jax.random.normal(noise_key, shape)

    def sample_host(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """numpy draws (the held-out test set); the Gaussian one is the family's historical test set."""
        if self.kind == "gaussian":
            return self.mean + self.scale * rng.standard_normal(shape)
        if self.kind == "student_t":
            return self.mean + self.scale * rng.standard_t(self.dof, shape)
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return self.mean + self.separation * sign + self.scale * rng.standard_normal(shape)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """F(x), float64."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        if self.kind == "student_t":
            return scipy.special.stdtr(self.dof, z)
        if self.kind == "mixture":
            shift = self.separation / self.scale
            return 0.5 * (scipy.special.ndtr(z + shift) + scipy.special.ndtr(z - shift))
        return scipy.special.ndtr(z)

    def density(self, x: np.ndarray) -> np.ndarray:
        """f(x), float64."""
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        if self.kind == "student_t":
            nu = self.dof
            log_norm = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
            return np.exp(log_norm - (nu + 1) / 2 * np.log1p(z**2 / nu)) / self.scale
        if self.kind == "mixture":
            shift = self.separation / self.scale
            return (
                0.5
                * (np.exp(-0.5 * (z + shift) ** 2) + np.exp(-0.5 * (z - shift) ** 2))
                / (self.scale * math.sqrt(2 * math.pi))
            )
        return np.exp(-0.5 * z**2) / (self.scale * math.sqrt(2 * math.pi))

    def quantile(self, probability: float) -> float:
        """F^{-1}(p), float64: closed form for the Gaussian and Student-t, bisection for the mixture."""
        if self.kind == "student_t":
            return self.mean + self.scale * float(scipy.special.stdtrit(self.dof, probability))
        if self.kind == "mixture":
            means = [[self.mean - self.separation], [self.mean + self.separation]]
            return float(metrics.normal_mixture_quantile([0.5, 0.5], means, [[self.scale]] * 2, probability)[0])
        return self.mean + self.scale * float(scipy.special.ndtri(probability))

    def gaussian_coupling(self) -> float:
        """c = int_0^1 F^{-1}(u) Phi^{-1}(u) du = E[(X - mu0) Z] under the monotone coupling Z = Phi^{-1}(F(X)).

        In one dimension W2^2(N(m, sigma^2), truth) = (m - mu0)^2 + Var(truth) + sigma^2 - 2 sigma c (the quantile
        coupling is optimal). The Gaussian truth has c = s (Gelbrich's formula); the others are integrated on
        x - mu0 = s sinh(t), t in [0, 12] (x up to ~8e4 s, so the Student-t tail beyond it is below 1e-8 for nu >= 2.5),
        using the symmetry about mu0 and Phi^{-1}(F(x)) = -Phi^{-1}(1 - F(x)) for x > mu0 (no cancellation).
        """
        if self.kind == "gaussian":
            return self.scale
        t = np.linspace(0.0, 12.0, 400_001)
        offset = self.scale * np.sinh(t)
        z = -scipy.special.ndtri(self.cdf(self.mean - offset))  # = Phi^{-1}(F(mu0 + x)) by symmetry
        density = self.density(self.mean + offset)
        # Far out a light tail's density underflows to 0 while z overflows: the term is 0 there.
        integrand = np.where(density > 0, offset * np.where(np.isfinite(z), z, 0.0) * density, 0.0)
        integrand = integrand * self.scale * np.cosh(t)
        return float(2.0 * np.trapezoid(integrand, t))
