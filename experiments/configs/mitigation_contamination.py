"""Web contamination: the share of human data in each generation's training set shrinks over time (1-D Gaussian).

The seed article's scenario (crawlers blocked, synthetic content growing): rho_g decays from real_fraction to
final_real_fraction along a schedule (collapse_jax/core/supply.py). Replace keeps only the newest batch, so once rho_g
is small the chain behaves like Shumailov et al.'s pure-synthetic loop (trace ratio ~ (1 - 1/M)^n, median -> 0); the
sweep asks how large the final human share must stay to hold the variance (final metric vs final_real_fraction).

Baseline in the same run: the constant schedule (rho stays 0.5: no contamination) beside the three declining ones.
Launch:  python -m experiments.main --config=experiments/configs/mitigation_contamination.py \
         --workdir=/tmp/contamination
Report:  python -m experiments.report --workdir=/tmp/contamination --output=/tmp/contamination_report
Runtime: 51 s on a busy 2-core CPU (4 schedules x 6 final fractions x 64 seeds x 200 generations; 4 compiles).
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = gaussian.get_config()
    config.seeds = 64
    # Generations after the fit on real data (long enough for pure replace to collapse: median ratio 0.14 at 200).
    config.num_generations = 200
    # Replace: each generation trains only on its own batch (real share rho_g + synthetic).
    config.regime.name = "replace"
    # rho at generation 1: half of every batch is human data at the start.
    config.regime.real_fraction = 0.5
    # How rho_g falls to final_real_fraction: constant (no contamination), linear over schedule_generations,
    # exponential (half-life schedule_generations) or step (at generation schedule_generations). Static: one
    # compile each.
    config.regime.real_fraction_schedule = ("constant", "linear", "exponential", "step")
    # rho_end: the human share the web settles at (the mitigation strength swept here, per chain).
    config.regime.final_real_fraction = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
    # T: generations of the decline (linear length, exponential half-life, step time).
    config.regime.schedule_generations = 50.0
    # Figures: the final trace_ratio (1 = no variance lost) vs final_real_fraction per schedule, with its breakdown.
    config.report.metrics = ("trace_ratio",)
    return common.finish(config)
