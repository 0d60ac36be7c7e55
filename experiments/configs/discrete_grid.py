"""Discrete collapse over a K x M grid under replace: absorption time against the Wright–Fisher law E[T] ∝ M.

Extends the K = 6, M = 1000 setting of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024) to K in {2, 6, 10} and
M in {10, 100, 1000}; E[T] ≈ -2M(K-1) ln(1-1/K) (Shumailov et al.; SCIENCE.md), 9 static groups in one results table.

Launch:  python -m experiments.main --config=experiments/configs/discrete_grid.py --workdir=/tmp/discrete_grid
Runtime: about 2.5 min on a 2-core CPU (9 static groups x 128 chains x 6000 generations; the M = 1000 groups dominate).
Override any field: --config.seeds=512 --config.model.num_outcomes="(2, 20)"
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 128
    # 6000 ≈ 3 E[T] of the slowest cell (K = 10, M = 1000: E[T] ≈ 1897).
    config.num_generations = 6000
    # M: draws each generation trains on (and synthetic draws each fit produces).
    config.samples_per_generation = (10, 100, 1000)

    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: number of outcomes (a tuple compiles one group per value).
    config.model.num_outcomes = (2, 6, 10)
    # beta: truth p0(i) ∝ i^-beta over ranks i = 1..K; 0 is uniform (a tuple sweeps it inside one compile).
    config.model.zipf_exponent = 0.0
    # alpha: add-alpha smoothing of the fitted frequencies; 0 is the MLE, the pure Wright–Fisher chain (a knob).
    config.model.smoothing = 0.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None

    config.chunk_generations = 500
    config.checkpoint_every = 1000
    return common.finish(config)
