"""Gillman et al.'s self-correction toy (experiments/configs/curation_self_correction.py) on the outside Gaussian family
examples/gaussian_wrapper/family.py: the same chains, bit for bit, under a family not named "gaussian".

Launch:  python -m experiments.main --config=examples/gaussian_wrapper/self_correction_config.py --workdir=/tmp/wrapped
Runtime: 32 s wall (14 s CPU) on the shared 2-core CPU, plots included (2 static groups x 400 chains x 50 generations).
Check:   python -m collapse_jax.testing --config=examples/gaussian_wrapper/self_correction_config.py
"""

import ml_collections

from experiments.configs import curation_self_correction


def get_config() -> ml_collections.ConfigDict:
    # 2-D Gaussian truth, M = 50, 50 generations, replace and accumulate, gamma in (0, 0.1, 0.5, 1): the shipped toy.
    config = curation_self_correction.get_config()
    # Model family: a module path exposing make_model(config, settings); its config.model fields are the built-in's.
    config.model.name = "examples.gaussian_wrapper.family"
    return config
