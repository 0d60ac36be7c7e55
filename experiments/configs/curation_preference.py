"""Preference curation (Ferbach et al., "Self-consuming generative models with curated data provably optimize human
preferences", NeurIPS 2024): each of the M training slots is filled by one of K = 16 fresh candidates, picked with
Bradley-Terry probability exp(r(x)) / sum exp(r), r(x) = beta x on a d = 1 Gaussian (M = 200, 20 generations,
replace and accumulate, beta in 0, 0.1, 0.2, 0.5, 50 seeds). Law: the kept law tends to p(x) e^{beta x} / Z =
N(mu + beta s^2, s^2) as K grows, so mu climbs beta s^2 (1 - 1/K) per generation (finite-K factor derived in
tests/test_curation_ops.py) while the reward (mean_reward) rises; under replace the variance keeps its plain
(M - 1)/M decay. --config.curation.reward=quadratic (r = -beta (x - mu*)^2) trades diversity for reward instead:
the tilt N(mu, s^2) e^{-beta x^2} has variance s^2 / (1 + 2 beta s^2). notes/literature.md has the numbers.

Baseline in the same run: beta = 0 picks a candidate uniformly (no preference).
Launch:  python -m experiments.main --config=experiments/configs/curation_preference.py --workdir=/tmp/preference
Runtime: 1 min 55 s wall (46 s CPU) on the shared 2-core CPU (2 static groups x 200 chains x 20 generations of 3200
candidates).
Override any field: --config.curation.candidates=64 --config.curation.oversample=64 --config.seeds=20
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 50
    config.num_generations = 20
    config.samples_per_generation = 200
    config.regime.name = ("replace", "accumulate")

    gaussian.set_model(config)

    config.curation.name = "preference"
    # K candidates per kept slot; oversample must equal it (K M candidates are drawn).
    config.curation.candidates = 16
    config.curation.oversample = 16
    # linear: r(x) = beta * sum_j x_j; quadratic: r(x) = -beta |x - true_mean|^2.
    config.curation.reward = "linear"
    # beta (a chain knob): 0 is uncurated (a uniform pick among K).
    config.curation.reward_scale = (0.0, 0.1, 0.2, 0.5)
    config.report.metrics = ("mean_sq_error", "trace_ratio", "mean_reward")
    return common.finish(config)
