"""A Tale of Tails: a model trained on top-k generated data has a test-error floor no sample size removes.

Dohmatob, Feng, Yang, Charton & Kempe (ICML 2024), Hutter's memorization model: Zipf truth p0(i) ∝ i^-β over
K = 100 outcomes; a generator fitted on R = 20 000 real draws emits M points with top-k decoding; the fit on them
errs on a real test point whose outcome it never saw: E = Σ p0(i) (1 - q_i)^M (q the decoded generator), which falls
like M^-(1 - 1/β) until it meets the floor Σ_{i>k} p0(i) ~ k^-(β - 1) / ((β - 1) ζ(β)), near M ~ k^β.

Launch:  python -m experiments.main --config=experiments/configs/tails_top_k.py --workdir=/tmp/tails_top_k
Figure:  PYTHONPATH=. python notes/supply_figures.py tails /tmp/tails_top_k notes/figures/tails_top_k.png
Runtime: 144 s on a 2-core CPU shared by ~7 jobs (load 12; 6 static groups of 256 chains x 1 generation).
Result (mean unseen_truth_mass at generation 1 / law, β = 1.5): k = 10 sits at its floor 0.173 from M = 300 on;
k = 30 reaches 0.068 (floor 0.067) by M = 1000; k = 100 (no cut) falls 0.235 -> 0.025 -> 0.0003 at M = 30, 1000,
10 000 (law 0.235, 0.024, 0.0001; the excess is the generator's own misses from its R real draws). Figure:
notes/figures/tails_top_k.png; numbers in notes/literature.md, "Tail cutting".
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # Chains per (k, β) knob pair: 32 x 4 x 2 = 256 chains in each static group.
    config.seeds = 32
    # One synthetic generation: column 0 is the generator (fit on real data), column 1 the model trained on its output.
    config.num_generations = 1
    config.chunk_generations = 1
    config.checkpoint_every = 1
    # M: the synthetic training set of generation 1 (static: one compile per value), the learning curve's x-axis.
    config.samples_per_generation = (30, 100, 300, 1000, 3000, 10_000)
    # regime.name: the default replace (generation 1 trains on the synthetic batch only).

    # Model family: a module in collapse_jax/models/.
    config.model.name = "discrete"
    # K: outcomes; the truth p0(i) ∝ i^-β over ranks 1..K.
    config.model.num_outcomes = 100
    # β: Zipf exponent of the truth (a knob: both run in one compile).
    config.model.zipf_exponent = (1.5, 2.0)
    # α = 0: maximum-likelihood frequencies, so an outcome absent from the training set has probability 0.
    config.model.smoothing = 0.0
    # R: the generator's real training set, large enough that its ranks match the truth's near rank k.
    config.model.real_data_size = 20_000
    # k: the generator keeps its k most likely outcomes (a knob; k = K is no cut).
    config.model.top_k = (3, 10, 30, 100)

    config.report.metrics = ("unseen_truth_mass",)
    return common.finish(config)
