"""Host-side settings of the GMM family's truth and error-source switches: the truth's blob centres, its per-axis
1% / 99% quantiles and HDR threshold, and the population fit's quadrature budget.
"""

from __future__ import annotations

import numpy as np

from collapse_jax.models import _quadrature as quadrature

# em: EM until the tolerance (at most max_iterations); truncated_em: exactly fit_steps iterations from a fresh
# init_method start every generation (functional approximation error: a capped fit from a non-optimal start).
FIT_METHODS = ("em", "truncated_em")
# fresh: a new init_method start each generation (a new sklearn GaussianMixture); previous: warm start at the last fit.
FIT_INITS = ("fresh", "previous")
# Largest quadrature point set a population fit may use (J components x nodes^d points per EM iteration per chain).
MAX_QUADRATURE_POINTS = 1 << 16


def truth_centres(components: int, separation: float, true_mean: float, dim: int) -> tuple[tuple[float, ...], ...]:
    """Centres of the truth's T equal-weight blobs: true_mean * 1 + (t - (T - 1) / 2) * separation * e_1, t < T."""
    offsets = [(t - (components - 1) / 2.0) * separation for t in range(components)]
    return tuple((true_mean + offset,) + (true_mean,) * (dim - 1) for offset in offsets)


def truth_settings(model, dim: int, true_mean: float, true_std: float, mass: float) -> dict:
    """Host-side constants of the truth: blob centres, per-axis 1% / 99% quantiles, the HDR log-density threshold."""
    components = model.truth_components
    centres = truth_centres(components, float(model.truth_separation), true_mean, dim)
    weights = np.full(components, 1.0 / components)
    tails = {"tail_low": [], "tail_high": []}
    for axis in range(dim):
        axis_means, stds = np.array([c[axis] for c in centres]), np.full(components, true_std)
        tails["tail_low"].append(quadrature.mixture_marginal_quantile(quadrature.TAIL_LOW, weights, axis_means, stds))
        tails["tail_high"].append(quadrature.mixture_marginal_quantile(quadrature.TAIL_HIGH, weights, axis_means, stds))
    threshold = 0.0
    if components > 1:
        # The HDR {p0 >= c} of mass m: c is the (1 - m) quantile of log p0(X), X ~ p0 (2e5 draws: mass error ~1e-3).
        rng = np.random.default_rng(0)
        points = np.asarray(centres)[rng.integers(0, components, 200_000)] + true_std * rng.standard_normal(
            (200_000, dim)
        )
        squared = np.sum((points[:, None, :] - np.asarray(centres)[None]) ** 2, axis=-1)
        log_density = np.log(np.mean(np.exp(-0.5 * squared / true_std**2), axis=1)) - dim * np.log(
            np.sqrt(2 * np.pi) * true_std
        )
        threshold = float(np.quantile(log_density, 1.0 - mass))
    return {
        "truth_means": centres if components > 1 else (),
        "tail_low": tuple(tails["tail_low"]),
        "tail_high": tuple(tails["tail_high"]),
        "good_log_density": threshold,
    }


def check_quadrature_points(nodes: int, components: int, dim: int) -> None:
    """One-line ValueError when a population fit's quadrature (components x nodes^d points) exceeds the budget.

    The point count is a product of three fields, which no declaration or rule can bound.
    """
    points = components * nodes**dim
    if points > MAX_QUADRATURE_POINTS:
        raise ValueError(
            f"config.model.quadrature_nodes: {nodes}^{dim} nodes x {components} components"
            f" = {points} quadrature points, more than {MAX_QUADRATURE_POINTS}; use fewer nodes or a smaller dim"
        )
