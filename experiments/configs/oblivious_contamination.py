"""Oblivious contamination: each generation adds n fresh real and M synthetic points to the accumulated pool.

Amin, Bie, Kong, Syed & Vassilvitskii (2026, arXiv 2601.15468), Gaussian mean with known σ: the fit is the mean of
the whole pool (the originals, every fresh real point, every synthetic point). With a = M / (M + n), B = M + n,
N_t = n0 + tB points: e_t = ((N_{t-1} + M) e_{t-1} + noise) / N_t, so V_t = E e_t² obeys
V_t = ((N_{t-1} + M)² V_{t-1} + B σ²) / N_t² (exact), and V_t ~ σ² / ((1 - 2a) B t) for a < 1/2,
~ σ² ln t / (B t) at a = 1/2, ~ C t^-2(1 - a) for a > 1/2: the phase change at a = 1/2.

Launch:  python -m experiments.main --config=experiments/configs/oblivious_contamination.py \
         --workdir=/tmp/oblivious_contamination
Figure:  PYTHONPATH=. python notes/supply_figures.py contamination /tmp/oblivious_contamination \
         notes/figures/oblivious_contamination.png
Runtime: 54 s on a 2-core CPU shared by ~7 jobs (1 static group of 2560 chains x 1000 generations).
Result (mean error at t = 1000 / recursion; slope over t = 100..1000): a = 0.2: 1.73e-5 / 1.67e-5, -1.05;
a = 0.5: 2.33e-4 / 2.17e-4, -0.87; a = 0.8: 7.55e-3 / 7.03e-3, -0.38 (law -0.39, asymptote -0.4).
Figure: notes/figures/oblivious_contamination.png; notes/literature.md, "Oblivious contamination".
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = gaussian.get_config()
    # Chains per n (5 values of n in one compile).
    config.seeds = 512
    # Generations after the fit on the n0 = M real points; the rates are read over t = 10..1000.
    config.num_generations = 1000
    config.chunk_generations = 100
    config.checkpoint_every = 500
    # Accumulate: every batch (fresh real inflow + synthetic) joins the pool, and the fit sees the whole pool.
    config.regime.name = "accumulate"
    # No real slots inside the M: the real data arrive only as the inflow on top of them.
    config.regime.real_fraction = 0.0
    # M: synthetic points each generation adds (and n0, the real set the first fit sees).
    config.samples_per_generation = 20
    # n: fresh real points each generation adds (a knob): a = M / (M + n) = 0.2, 0.33, 0.5, 0.67, 0.8.
    config.regime.real_inflow = (80, 40, 20, 10, 5)
    # The fit keeps σ² = 1 and estimates only the mean (d = 1 from gaussian.py): the error of the mean is all.
    config.model.known_variance = True
    # Synthetic data arrive as the sufficient statistics of M draws: no [M] arrays.
    config.model.sampling = "statistics"
    config.report.metrics = ("mean_sq_error",)
    return common.finish(config)
