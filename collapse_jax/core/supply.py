"""Real-data supply over generations: real_fraction schedules, a growing inflow of new real data, a preserved reserve.

The web-contamination scenario (the human share shrinks) and its remedies (keep humans producing, keep the originals).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = ("constant", "linear", "exponential", "step")
# How many points generation t trains on: constant M, or power n_t = ceil(M (1 + t)^s) (Xu, He & Cheng 2025).
SAMPLES_SCHEDULES = ("constant", "power")


def real_fraction_at(schedule: str, knobs: dict, generation: jax.Array) -> jax.Array:
    """rho_g for generation g >= 1, with t = g - 1 (generation 1 uses knobs['real_fraction'] = rho exactly).

    constant: rho; linear: rho + (rho_end - rho) min(t / T, 1); exponential: rho_end + (rho - rho_end) 2^(-t / T)
    (T = half-life); step: rho for g <= T, rho_end after. rho_end = final_real_fraction, T = schedule_generations.
    """
    rho = knobs["real_fraction"]
    if schedule == "constant":
        return rho
    final, span = knobs["final_real_fraction"], knobs["schedule_generations"]
    elapsed = jnp.maximum(generation - 1, 0).astype(jnp.float32)
    if schedule == "linear":
        return rho + (final - rho) * jnp.minimum(elapsed / span, 1.0)
    if schedule == "exponential":
        return final + (rho - final) * jnp.exp2(-elapsed / span)
    return jnp.where(generation <= span, rho, final)


def samples_at(base: int, growth: jax.Array, generation: jax.Array) -> jax.Array:
    """n_t = ceil(M (1 + t)^s): the points generation t trains on under the power schedule (n_0 = M)."""
    size = base * jnp.exp(jnp.asarray(growth, jnp.float32) * jnp.log1p(jnp.asarray(generation, jnp.float32)))
    # float32 powers carry a relative error ~1e-7: 10 x 2^2 lands at 40.000004, which must still give 40.
    return jnp.ceil(size * (1.0 - 1e-6)).astype(jnp.int32)


def largest_samples(base: int, growth: float, generations: int) -> int:
    """The run's largest n_t, ceil(M (1 + T)^s): the static capacity of a generation's batch."""
    return int(np.ceil(base * (1.0 + generations) ** float(growth) * (1.0 - 1e-6)))


def knob_fields(config: Any) -> dict[str, str]:
    """The supply knobs this config uses (an absent field adds no knob: the supply stays at rho)."""
    regime = config.regime
    fields = {}
    if regime.get("real_fraction_schedule", "constant") != "constant":
        fields["final_real_fraction"] = "regime.final_real_fraction"
        fields["schedule_generations"] = "regime.schedule_generations"
    if "real_inflow" in regime:
        fields["real_inflow"] = "regime.real_inflow"
    if "preserved_fraction" in regime:
        fields["preserved_fraction"] = "regime.preserved_fraction"
    if regime.get("real_weight") is not None:
        fields["real_weight"] = "regime.real_weight"
    if regime.get("samples_schedule", "constant") == "power":
        fields["samples_growth"] = "regime.samples_growth"
    return fields


def oblivious_mean_variance(initial: int, real: int, synthetic: int, generations: int, variance: float) -> np.ndarray:
    """V_t = E(μ_t - μ)², t = 0..generations, of the pooled mean under oblivious contamination (Amin et al. 2026): the
    pool starts as n0 = `initial` real points and each generation adds n fresh real and M synthetic points drawn from
    N(μ_{t-1}, σ²) (σ² known). With N_t = n0 + t(n + M): V_0 = σ²/n0,
    V_t = ((N_{t-1} + M)² V_{t-1} + (n + M) σ²) / N_t², which falls like 1/t for a = M/(M + n) < 1/2 and like
    t^-2(1 - a) above it (the sum of (n+M)σ²/N_s² ∏(1 - n/N)² converges only there).
    """
    values = np.empty(generations + 1)
    size, values[0] = float(initial), variance / initial
    for t in range(1, generations + 1):
        grown = size + real + synthetic
        values[t] = ((size + synthetic) ** 2 * values[t - 1] + (real + synthetic) * variance) / grown**2
        size = grown
    return values
