"""Keeping humans in the loop: a growing inflow of new real data, and a preserved reserve of the originals (Gaussian).

Two remedies from the seed article, swept jointly in one compile: each generation adds real_inflow new real points
on top of the M synthetic ones (fresh draws from the truth), or a fixed reserve of preserved_fraction of the original
real data stays in every training set. Replace regime, rho = 0 otherwise, so without either the chains collapse as in
Shumailov et al. (2024, Thm 3.1; median trace ratio 0.14 at M = 100, n = 200); the figures show how much of each
holds the variance (final trace_ratio vs real_inflow per preserved_fraction and vice versa).

Baseline in the same run: real_inflow 0 with preserved_fraction 0 (no remedy: Shumailov's collapsing loop).
Launch:  python -m experiments.main --config=experiments/configs/mitigation_real_supply.py --workdir=/tmp/real_supply
Report:  python -m experiments.report --workdir=/tmp/real_supply --output=/tmp/real_supply_report
Runtime: 18 s on a busy 2-core CPU (6 x 5 knob values x 64 seeds x 200 generations in one compile).
"""

import ml_collections

from experiments.configs import common, gaussian


def get_config() -> ml_collections.ConfigDict:
    config = gaussian.get_config()
    config.seeds = 64
    config.num_generations = 200
    # Replace: each generation trains on its own batch only; the remedies add real points to that batch.
    config.regime.name = "replace"
    # No real points inside the M (the remedies below add real data on top of it).
    config.regime.real_fraction = 0.0
    # New real points added to every generation's batch (per chain): "incentives for humans to keep producing".
    config.regime.real_inflow = (0, 1, 2, 5, 10, 25)
    # Share of the original real training set (M = 100 points) kept in every generation's training set (per chain).
    config.regime.preserved_fraction = (0.0, 0.01, 0.05, 0.1, 0.25)
    # Figures: final trace_ratio vs each remedy's strength.
    config.report.metrics = ("trace_ratio",)
    return common.finish(config)
