"""Growing sample sizes: generation t trains on n_t = ceil(M (1 + t)^s) points; the variance survives iff Σ 1/n_t < ∞.

Xu, He & Cheng (2025, arXiv 2505.13947); Barzilai & Shamir (2025, arXiv 2505.19046). Gaussian, d = 1, MLE, replace:
each fit multiplies σ² by χ²_{n_t - 1} / n_t, so E[σ_t² / σ²] = Π_{j<=t} (1 - 1/n_j): constant (s = 0) decays
geometrically, linear growth (s = 1) still collapses like t^(-1/M), superlinear growth (s = 2) keeps a positive limit.

Launch:  python -m experiments.main --config=experiments/configs/growing_samples.py --workdir=/tmp/growing_samples
Figure:  PYTHONPATH=. python notes/supply_figures.py growth /tmp/growing_samples notes/figures/growing_samples.png
Runtime: 97 s on a 2-core CPU shared by ~7 jobs (1 static group of 512 chains x 50 generations, 26 010 slots each).
Result (median trace_ratio at t = 10 / 50): s = 0: 0.084 / 0.000; s = 0.5: 0.32 / 0.07; s = 1: 0.53 / 0.43 (still
falling); s = 2: 0.79 / 0.75 (mean 0.80, law 0.845). Figure: notes/figures/growing_samples.png; notes/literature.md.
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = gaussian.get_config()
    # Chains per growth exponent s (4 values in one compile).
    config.seeds = 128
    config.num_generations = 50
    config.chunk_generations = 25
    config.checkpoint_every = 25
    config.regime.name = "replace"
    config.regime.real_fraction = 0.0
    # M = n_0: the real set and the base of the schedule.
    config.samples_per_generation = 10
    # n_t = ceil(M (1 + t)^s); every generation draws the run's largest n_t = ceil(10 x 51^2) = 26 010 points and
    # masks the rest (memory and time per generation scale with that capacity, not with n_t).
    config.regime.samples_schedule = "power"
    # s: 0 (constant), 0.5, 1 (linear: still collapses), 2 (superlinear: keeps the variance); a knob.
    config.regime.samples_growth = (0.0, 0.5, 1.0, 2.0)
    # d = 1 and the MLE (ddof 0) come from gaussian.py.
    config.report.metrics = ("trace_ratio",)
    return common.finish(config)
