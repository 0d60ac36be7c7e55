"""The largest training pool a regime hands to a family's fit, for families whose params store their pool (KDE's
centres, the exact diffusion denoiser's training set): a family never imports the core, so this restates its sizing.
"""

from __future__ import annotations

import numpy as np


def _largest(value) -> float:
    return float(np.max(np.asarray(value, np.float64)))


def pool_capacity(config, real_data_size: int, num_generations: int) -> int:
    """The largest pool a regime hands to fit, as regimes.make_regime sizes it, maximized over the sweep.

    A batch is [preserved P | real R | inflow I | synthetic M x oversample] slots (P = 0 under accumulating regimes);
    accumulate keeps real_data_size + G batches.
    """
    samples, regime = config.samples_per_generation, config.regime
    if regime.get("samples_schedule") == "power":
        # The power samples schedule's batch holds the run's largest n_t = ceil(M (1 + G)^s) (core/supply.py).
        growth = _largest(regime.samples_growth)
        samples = int(np.ceil(samples * (1.0 + num_generations) ** growth * (1.0 - 1e-6)))
    rho = _largest(regime.real_fraction)
    schedules = regime.get("real_fraction_schedule", "constant")
    if any(name != "constant" for name in (schedules if isinstance(schedules, (list, tuple)) else [schedules])):
        rho = max(rho, _largest(regime.final_real_fraction))
    real_slots = int(rho * samples + 1e-6)
    inflow_slots = int(_largest(regime.get("real_inflow", 0)))
    preserved_slots = int(_largest(regime.get("preserved_fraction", 0.0)) * real_data_size + 1e-6)
    candidates = samples * int((config.get("curation") or {}).get("oversample", 1))
    names = regime.name if isinstance(regime.name, (list, tuple)) else [regime.name]
    sizes = [real_data_size]
    for name in names:
        if name == "accumulate":
            sizes.append(real_data_size + num_generations * (real_slots + inflow_slots + candidates))
        elif name == "accumulate_subsample":
            sizes.append(samples)
        else:  # replace / fresh train on the latest batch
            sizes.append(preserved_slots + real_slots + inflow_slots + candidates)
    return max(sizes)
