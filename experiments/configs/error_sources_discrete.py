"""The three sources of error of Shumailov et al. (2024) on the categorical, isolated: 2 x 2 x 2 in one command.

Truth: Zipf p0(i) ∝ 1/i over K = 10 outcomes, M = 100 draws per generation, replace. Switches:
- statistical approximation: model.population_fit False (M multinomial draws) / True (the expected counts, exact);
- functional expressivity: model.num_bins 10 = K (the categorical) / 5 (a histogram of 5 bins of 2 outcomes);
- functional approximation: model.smoothing 0 (the MLE) / 0.5 (add-α, the Dirichlet-MAP objective: a drift to
  uniform, p_n - u = ρ^n (p_0 - u), ρ = M / (M + K α) = 0.952 with population fits).
Main metric kl_to_truth = KL(p || p0); tails: tail_mass (truth mass of the surviving outcomes with p0 <= 1/M).

Launch:  python -m experiments.main --config=experiments/configs/error_sources_discrete.py --workdir=/tmp/es_discrete
Runtime: 4 min 44 s wall on the 2-core CPU shared by ~6 jobs (load ~15-20; 4 groups x 2 smoothing x 32 seeds x
201 fits, with --config.make_plots=False).
"""

import ml_collections

from experiments.configs import common, discrete


def get_config() -> ml_collections.ConfigDict:
    config = discrete.get_config()
    config.seeds = 32
    config.num_generations = 200
    config.samples_per_generation = 100
    config.regime.name = "replace"
    # K = 10 outcomes, Zipf exponent 1 (rare outcomes below 1/M exist: the tail).
    config.model.num_outcomes = 10
    config.model.zipf_exponent = 1.0
    # Expressivity: the categorical (10 bins of one outcome) / 5 bins of two consecutive outcomes.
    config.model.num_bins = (10, 5)
    # Statistical error: on (M draws) / off (expected counts).
    config.model.population_fit = (False, True)
    # Approximation: the MLE / add-alpha with alpha = 0.5 (a chain knob: both in one compile).
    config.model.smoothing = (0.0, 0.5)

    config.chunk_generations = 100
    config.checkpoint_every = 100
    config.report.metrics = ("kl_to_truth", "tail_mass", "entropy")
    return common.finish(config)
