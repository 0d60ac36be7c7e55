"""Weighted real/synthetic mixing: the golden-ratio optimum of the real share of the training weight (Gaussian).

He, Xu & Cheng (2025); Garg, Bhattacharya & Sur (2025): n fresh real and n synthetic points per generation (fresh
regime, real_fraction 1/2, M = 2n = 20), the real points carrying weight share w (regime.real_weight). With a known
variance (model.known_variance, the fit keeps sigma^2 = 1 and fits the mean) the fitted mean's stationary variance
is (w^2 + (1 - w)^2) / (w (2 - w)) sigma^2 / n, smallest at w = 1/phi = 0.618 (0.618 sigma^2 / n, below the
real-only sigma^2 / n at w = 1); tests/test_real_weight.py derives and checks it. The figure: final mean_sq_error
against w (median and 10-90% band over seeds; its mean over chains is the variance of the law). For the same sweep
with the variance fitted too, add --config.model.known_variance=False (notes/real_weight.md has both tables).

Launch:  python -m experiments.main --config=experiments/configs/real_weight.py --workdir=/tmp/real_weight
Report:  python -m experiments.report --workdir=/tmp/real_weight --output=/tmp/real_weight_report
Runtime: 60 s end to end with the report on a busy 2-core CPU (load ~8); the simulation alone 33-38 s (7 values of
w x 500 seeds x 80 generations in one compile), for each known_variance setting.
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = gaussian.get_config()
    config.seeds = 500
    config.chain_block = 500
    config.num_generations = 80
    config.chunk_generations = 40
    config.checkpoint_every = 40
    # M = 2n: n = 10 real and n = 10 synthetic points per generation.
    config.samples_per_generation = 20
    # Fresh: the real half is n new truth draws each generation (no reuse of one real set).
    config.regime.name = "fresh"
    config.regime.real_fraction = 0.5
    # w: the real points' share of each generation's training weight (per chain; None would weight every point 1).
    config.regime.real_weight = (0.3, 0.4, 0.5, 0.618, 0.75, 0.9, 1.0)
    # The law's setting: sigma^2 known, only the mean is fitted.
    config.model.known_variance = True
    config.report.metrics = ("mean_sq_error",)
    config.report.reference_lines = (("real_weight", 0.618, "1/phi"),)
    return common.finish(config)
