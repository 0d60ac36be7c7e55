"""Self-correcting self-consuming loops (Gillman et al., "Self-correcting self-consuming loops for generative model
training", ICML 2024): every synthetic candidate moves a share gamma of the way along the optimal transport map from
the current model to the truth, x -> x + gamma (T(x) - x), before it enters the training data. Their toy setting: a
2-D Gaussian refit each generation on M = 50 points, 50 generations, accumulate (the pool keeps every batch) and
replace, gamma in 0 (no correction), 0.1, 0.5 and 1 (the ideal correction: the synthetic data are then draws from
the truth), the distance to the truth measured as W2 (our w2_sq_to_truth is its square). Their public repository
holds the human-motion experiments only, so the toy's numbers here follow the paper's description (notes/literature.md
has the measured curves and the caveat).

Baseline in the same run: gamma = 0 is curation none bit for bit.
Launch:  python -m experiments.main --config=experiments/configs/curation_self_correction.py --workdir=/tmp/selfcorr
Runtime: 38 s wall (33 s CPU) on the shared 2-core CPU (2 static groups x 400 chains x 50 generations of 50 points).
Override any field: --config.curation.correction_strength=0.25 --config.regime.name=replace --config.seeds=20
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()  # 100 seeds per gamma and regime (the shared default)
    config.num_generations = 50
    config.samples_per_generation = 50
    config.regime.name = ("replace", "accumulate")

    gaussian.set_model(config, dim=2)

    config.curation.name = "self_correction"
    # gamma (a chain knob): 0 is the uncorrected loop, 1 the ideal correction.
    config.curation.correction_strength = (0.0, 0.1, 0.5, 1.0)
    config.report.metrics = ("w2_sq_to_truth", "trace_ratio", "mean_sq_error")
    return common.finish(config)
