"""Discrete collapse: refit a categorical over K = 6 outcomes to M = 1000 draws per generation (Wright–Fisher chain).

Reproduces the K = 6, M = 1000 categorical setting of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024): replace
collapses to one outcome after E[T] ≈ -2M(K-1) ln(1-1/K) ≈ 1823 generations (Shumailov et al.); accumulate does not.

Launch:  python -m experiments.main --config=experiments/configs/discrete.py --workdir=/tmp/discrete
Runtime: about 50 s on a 2-core CPU (2 static groups x 128 chains x 6000 generations of M = 1000 draws).
Override any field: --config.model.num_outcomes=10 --config.samples_per_generation=100 --config.seeds=1000
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 128
    # 6000 ≈ 3.3 E[T]: the chance a K = 6, M = 1000 chain is still polymorphic then is below 1%.
    config.num_generations = 6000
    # M: draws each generation trains on (and synthetic draws each fit produces).
    config.samples_per_generation = 1000

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: number of outcomes (a tuple compiles one group per value).
    config.model.num_outcomes = 6
    # beta: truth p0(i) ∝ i^-beta over ranks i = 1..K; 0 is uniform (a tuple sweeps it inside one compile).
    config.model.zipf_exponent = 0.0
    # q: Zipf–Mandelbrot shift, p0(i) ∝ (i + q)^-beta (None: Zipf, no knob; a number or tuple is a per-chain knob).
    config.model.zipf_shift = None
    # alpha: add-alpha smoothing of the fitted frequencies; 0 is the MLE, the pure Wright–Fisher chain (a knob).
    config.model.smoothing = 0.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # B: the family is uniform inside B bins of consecutive outcomes (None: K bins, the plain categorical; B < K
    # switches functional expressivity error on). A tuple compiles one group per value.
    config.model.num_bins = None
    # Statistical error off: each fit sees the expected counts of the previous model (the truth first), not M draws
    # (replace, real_fraction 0 only). A tuple (False, True) compiles one group per value.
    config.model.population_fit = False

    config.chunk_generations = 500
    config.checkpoint_every = 1000
    return common.finish(config)
