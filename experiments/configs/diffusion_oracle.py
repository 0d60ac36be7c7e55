"""Diffusion with the exact denoiser in the loop: the statistical error of a perfect score alone, on the 2-D mixture.

The oracle setting of the diffusion-collapse literature (Alemohammad et al., "Self-Consuming Generative Models Go MAD",
ICLR 2024; Bertrand et al., "On the stability of iterative retraining", ICLR 2024): no network, so no expressivity or
optimization error; each generation's denoiser is the exact one of its M training points (a memorizer), and the
truncation t0 is the only smoothing. Sweeps M and t0 under replace vs accumulate, 8-mode mixture on the unit circle.

Launch:  python -m experiments.main --config=experiments/configs/diffusion_oracle.py --workdir=/tmp/diff_oracle
Runtime: 3.5 min on a 2-core CPU shared with other work (2 M x 2 regimes = 4 compiles, 384 chains, 10 generations,
32 sampler steps; accumulate at M = 256, whose pool holds 11 M points, takes 2.5 min of it; notes/diffusion.md).
Override: --config.model.sampler=ode --config.seeds=8 --config.samples_per_generation=64 --config.model.score=truth
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # M: the training set of every generation; a tuple compiles one group per value.
    config.samples_per_generation = (64, 256)
    # Chains per (M, regime) group are seeds x truncations: 16 x 6 = 96; 384 in all.
    config.seeds = 16
    config.num_generations = 10
    config.chunk_generations = 5
    # Chains per vmapped block: the exact denoiser's [M, pool] posterior (2.9 MB per chain at M = 256 accumulated over
    # 10 generations) is not in the engine's per-chain estimate, so "auto" would vmap all 96 chains at once.
    config.chain_block = 8
    # Fully synthetic loop (replace) vs keeping every generation's data (accumulate, Gerstgrasser et al. 2024).
    config.regime.name = ("replace", "accumulate")

    # Model family: the package collapse_jax/models/diffusion/.
    config.model.name = "diffusion"
    # exact: the denoiser of the weighted training set itself (no network); truth: the truth's own (no statistical
    # error either).
    config.model.score = "exact"
    # alpha_t: cosine (Nichol & Dhariwal 2021) or linear (DDPM's betas in continuous time).
    config.model.schedule = "cosine"
    # ancestral (DDPM) or ode (deterministic DDIM).
    config.model.sampler = "ancestral"
    # Uniform steps in t from 1 to t0.
    config.model.sampling_steps = 32
    # t0: the sampler stops at forward time t0 (0: the training points themselves); a tuple sweeps it per chain.
    config.model.truncation = (0.0, 0.01, 0.03, 0.1, 0.2, 0.3)
    # Output x_t0 (False) or its denoised mean (True, which pulls samples back onto the training points).
    config.model.final_denoise = False
    # lambda: scales the sampler's injected noise (MAD's sampling bias; 1: the plain sampler).
    config.model.sampling_bias = 1.0
    # The truth: 8 Gaussian modes of std 0.05 evenly spaced on the unit circle.
    config.model.truth = "mixture"
    config.model.modes = 8
    config.model.mode_std = 0.05
    # Size of the real training set at generation 0 (None: M).
    config.model.real_data_size = None
    return common.finish(config)
