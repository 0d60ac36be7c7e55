"""Sample selection bias (Qiao et al., "When sample selection bias precipitates model collapse"): a d = 10 Gaussian
refit each generation on M = 100 points that are the alpha = 0.1 share of M / alpha = 1000 candidates closest to a
target, under replace and accumulate, 100 generations (their subexperiments/Gaussian_Modeling setting: d, N, alpha
and the generation count; their metric Tr(Sigma_t) / Tr(Sigma_0) is our trace_ratio, the truth's trace being
Tr Sigma_0).
alpha = 1.0 with the same 1000 candidates is the no-selection arm: every candidate survives and the regime trains on
the first M, i.e. M plain draws (one compile per regime instead of two). Targets: the truth's mean (offset 0) and one
true standard deviation off it in every coordinate (offset 1; theirs shifts half the coordinates by N(0, 9) in units
where a coordinate's variance is ~10, about one standard deviation). notes/literature.md has the numbers beside theirs.

Baseline in the same run: alpha = 1 keeps every candidate (no selection).
Launch:  python -m experiments.main --config=experiments/configs/curation_selection.py --workdir=/tmp/selection
Runtime: 7 min 20 s wall (2 min CPU) on the shared 2-core CPU: 2 static groups x 200 chains x 100 generations of
1000 candidates each (logged ~1 s per generation per group once compiled), plus compiles and the report.
Override any field: --config.curation.selection_share=0.5 --config.curation.oversample=2 --config.seeds=20
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 50
    config.regime.name = ("replace", "accumulate")

    gaussian.set_model(config, dim=10)

    config.curation.name = "selection"
    # M / alpha candidates per generation: the kept alpha share fills exactly the M slots.
    config.curation.oversample = 10
    # alpha (a chain knob): 0.1 is their selection ratio; 1.0 keeps every candidate (no selection).
    config.curation.selection_share = (0.1, 1.0)
    # The target's offset from the truth's mean, in every coordinate (a chain knob).
    config.curation.target_offset = (0.0, 1.0)
    config.report.metrics = ("trace_ratio", "mean_sq_error")
    return common.finish(config)
