"""KDE collapse: keep M points as centres of a Gaussian KDE, sample M from it, repeat (100 generations).

Reproduces the KDE sweep of Kazdan, Schaeffer et al. ("Collapse or Thrive?", 2024, sweeps/fit_kdes): moons with noise
0.05, Gaussian kernel, bandwidths 0.1 / 0.5 / 1.0, M in {10, 32, 100, 316, 1000}, replace vs accumulate, mean NLL of
held-out real points. (Their test set had M points; ours is a fixed 1000-point set shared by every chain.)

Launch:  python -m experiments.main --config=experiments/configs/kde.py --workdir=/tmp/kde
Runtime: replace groups take seconds; accumulate keeps every generation's points (capacity 101k centres per chain at
M = 1000) and scores 1000 test points against all of them each generation: ~1e8 kernel terms per chain-generation,
hours for the full grid on a 2-core CPU (use --config.samples_per_generation="(10,32,100,316)" there), minutes on a GPU.
Override: --config.model.dataset=circles --config.model.bandwidth=scott --config.seeds=20
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # M: points each generation trains on; a list compiles one group per value (Kazdan et al.'s grid).
    config.samples_per_generation = (10, 32, 100, 316, 1000)

    config.regime.name = ("replace", "accumulate")

    # Model family: a module in collapse_jax/models/.
    config.model.name = "kde"
    # blobs | moons | circles | swiss_roll (2-D, generated in JAX); a list compiles one group per data set.
    config.model.dataset = "moons"
    # Gaussian noise std added to moons / circles / swiss roll points (Kazdan et al.: 0.05).
    config.model.noise = 0.05
    # circles: radius of the inner circle (sklearn's default).
    config.model.factor = 0.8
    # blobs: number of blobs, their std, and the seed of their centres (uniform in [-10, 10]^2, fixed for all chains).
    config.model.num_blobs = 3
    config.model.cluster_std = 1.0
    config.model.dataset_seed = 0
    # h: kernel bandwidth; a number or list of numbers (a per-chain knob), or "scott" / "silverman" (sklearn's rules,
    # recomputed from each generation's pool size).
    config.model.bandwidth = (0.1, 0.5, 1.0)
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    # Held-out real points for nll_real_test (shared by all chains).
    config.model.test_size = 1000

    config.chunk_generations = 25
    config.checkpoint_every = 50
    return common.finish(config)
