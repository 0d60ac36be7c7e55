"""Tails die first: Zipf truth p0(i) ∝ i^-β over K = 100 outcomes, M = 100 draws per generation.

Shumailov et al. (2024): an outcome of probability q is missing from a generation with probability (1 - q)^M, so the
tail (p0 <= 1/M) vanishes long before the entropy falls; accumulate keeps it. β in {0.5, 1, 1.5} runs in one compile.

Launch:  python -m experiments.main --config=experiments/configs/discrete_zipf.py --workdir=/tmp/discrete_zipf
Runtime: about 15 s on a 2-core CPU (2 static groups x 384 chains x 200 generations).
Override any field: --config.model.zipf_exponent="(1.0,)" --config.seeds=512
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 128
    config.num_generations = 200

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: number of outcomes (a tuple compiles one group per value).
    config.model.num_outcomes = 100
    # beta: truth p0(i) ∝ i^-beta over ranks i = 1..K; 0 is uniform (a tuple sweeps it inside one compile).
    config.model.zipf_exponent = (0.5, 1.0, 1.5)
    # alpha: add-alpha smoothing of the fitted frequencies; 0 is the MLE, the pure Wright–Fisher chain (a knob).
    config.model.smoothing = 0.0
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None

    config.chunk_generations = 50
    config.checkpoint_every = 50
    return common.finish(config)
