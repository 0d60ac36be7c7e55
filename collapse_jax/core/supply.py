"""Real-data supply over generations: real_fraction schedules, a growing inflow of new real data, a preserved reserve.

The web-contamination scenario (the human share shrinks) and its remedies (keep humans producing, keep the originals).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

SCHEDULES = ("constant", "linear", "exponential", "step")


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


def knob_fields(config: Any) -> dict[str, str]:
    """The supply knobs this config uses (absent fields keep the pre-mitigation behaviour: no extra knobs)."""
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
    return fields


def _each(value: Any) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate(config: Any) -> None:
    """One-line ValueErrors naming the regime field and what is allowed."""
    regime = config.regime
    schedules = _each(regime.get("real_fraction_schedule", "constant"))
    for schedule in schedules:
        if schedule not in SCHEDULES:
            raise ValueError(
                f"config.regime.real_fraction_schedule: unknown schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}"
            )
    if any(schedule != "constant" for schedule in schedules):
        for path in ("final_real_fraction", "schedule_generations"):
            if path not in regime:
                raise ValueError(f"config.regime.{path}: required by a non-constant real_fraction_schedule")
        for value in _each(regime.final_real_fraction):
            if not _is_real(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"config.regime.final_real_fraction: must be in [0, 1], got {value!r}")
        for value in _each(regime.schedule_generations):
            if not _is_real(value) or not value > 0:
                raise ValueError(f"config.regime.schedule_generations: must be a number > 0, got {value!r}")
    for value in _each(regime.get("real_inflow", 0)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
            raise ValueError(f"config.regime.real_inflow: must be an integer >= 0 (new real points), got {value!r}")
    for value in _each(regime.get("preserved_fraction", 0.0)):
        if not _is_real(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"config.regime.preserved_fraction: must be in [0, 1], got {value!r}")
