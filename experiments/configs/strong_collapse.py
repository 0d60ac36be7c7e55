"""Strong model collapse: a fixed synthetic share in the training mix leaves an error floor more data does not remove.

Dohmatob, Feng, Subramonian & Kempe (ICLR 2025), linear regression: a generator is OLS on n0 = 20 real points
(d = 10, σ = 1, so its error is e_g = σ²d/(n0 - d - 1) = 1.11); the model is OLS on N points of which a share p are
the generator's labels of fresh inputs and 1 - p fresh real points. E‖ŵ - w*‖² = p² e_g (1 + (d+1)(1-p)/(pN)) +
σ²d/(N - d - 1) (linear_regression.strong_collapse_error): it falls like 1/N only for p = 0, else it stops at p² e_g.

Launch:  python -m experiments.main --config=experiments/configs/strong_collapse.py --workdir=/tmp/strong_collapse
Figure:  PYTHONPATH=. python notes/supply_figures.py strong /tmp/strong_collapse notes/figures/strong_collapse.png
Runtime: 4 min on a 2-core CPU shared by ~7 jobs (load 12; 5 static groups of 1024 chains x 1 generation).
Result (mean test_mse at generation 1, law in brackets): p = 0: 0.0103 (0.0101) at N = 1000, 0.0011 (0.0010) at
N = 10 000; p = 0.2: 0.0592 (0.0565), 0.0477 (0.0456), floor p² e_g = 0.0444; p = 0.5: 0.305 (0.291), 0.290 (0.279),
floor 0.278. The generators' mean error was 1.161 (e_g = 1.111; the same 256 generators serve every N), which is the
~4% excess of every floor. Figure: notes/figures/strong_collapse.png; notes/literature.md, "Strong model collapse".
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # Chains per share p (4 shares in each static group).
    config.seeds = 256
    # One generation: column 0 is the generator (OLS on the n0 real points), column 1 the model trained on the mix.
    config.num_generations = 1
    config.chunk_generations = 1
    config.checkpoint_every = 1
    # N: the model's training set (static: one compile per value), the learning curve's x-axis.
    config.samples_per_generation = (100, 300, 1000, 3000, 10_000)
    # Fresh: the real share of generation 1's training set is new truth draws, the rest the generator's samples.
    config.regime.name = "fresh"
    # 1 - p: the real share (a knob); p = 0, 0.1, 0.2, 0.5 synthetic.
    config.regime.real_fraction = (1.0, 0.9, 0.8, 0.5)

    # Model family: a module in collapse_jax/models/.
    config.model.name = "linear_regression"
    # d: input dimension; x ~ N(0, I_d), w* = 1/√d.
    config.model.dim = 10
    # σ: label noise of real and synthetic labels alike.
    config.model.noise_std = 1.0
    # λ = 0: ordinary least squares.
    config.model.ridge = 0.0
    # n0: the generator's real training set (the chain's design).
    config.model.real_data_size = 20
    # The generator labels new inputs x ~ N(0, I) (its synthetic data are a distribution, not a relabelled design).
    config.model.synthetic_inputs = "fresh"
    # Held-out inputs for test_mse_empirical (noise-free labels x·w*), shared by all chains.
    config.model.test_size = 10_000
    config.model.test_seed = 2**31 - 1

    config.report.metrics = ("test_mse",)
    return common.finish(config)
