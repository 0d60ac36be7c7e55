"""A learned diffusion model in the loop on the 2-D mixture: a residual MLP denoiser trained per chain, 96 chains.

The toy setting of the diffusion-collapse literature (Alemohammad et al., "Self-Consuming Generative Models Go MAD",
ICLR 2024; Bertrand et al., "On the stability of iterative retraining of generative models on their own data", ICLR
2024): a fully synthetic loop (replace), keeping every generation's data (accumulate, Gerstgrasser et al. 2024) and
fresh real data each generation (fresh), each at real share 0 and 1/2 (replace at 1/2 is MAD's synthetic augmentation
loop), 16 chains per setting: 96 chains, one vmapped program per regime.

Launch:  python -m experiments.main --config=experiments/configs/diffusion_toy.py --workdir=/tmp/diffusion_toy
Runtime: 6 min 47 s wall (2 min 35 s CPU) on the 2-core CPU shared with other sessions at load ~12: 3 regimes x 32
chains, 8 generations of 300 AdamW steps (batch 64) and 256 samples in 32 steps; ~2 min per regime (notes/diffusion.md).
Override: --config.seeds=8 --config.model.train_steps=1000 --config.model.sampling_bias='(1.0, 0.8)'
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # M: each generation's training set (and the number of samples the model draws).
    config.samples_per_generation = 256
    # Chains per (regime, real share).
    config.seeds = 16
    config.num_generations = 8
    config.chunk_generations = 4
    # Chains per vmapped block: the engine's "auto" does not count the training scan's activations (batch x width per
    # layer, per step) nor the sampler's, so it is set here; 32 chains of this MLP need ~60 MB.
    config.chain_block = 32
    # Fully synthetic (replace), accumulated data (accumulate) and fresh real data each generation (fresh).
    config.regime.name = ("replace", "accumulate", "fresh")
    # Share of each generation's M points that are real: drawn anew from the truth (fresh) or from the chain's original
    # real set (replace, accumulate). Fresh at 0 is the fully synthetic loop itself: its bits equal replace's at 0.
    config.regime.real_fraction = (0.0, 0.5)

    # Model family: the package collapse_jax/models/diffusion/.
    config.model.name = "diffusion"
    # The denoiser: a residual MLP with a sinusoidal time embedding, predicting the noise eps.
    config.model.score = "mlp"
    config.model.width = 64
    config.model.depth = 2
    # AdamW steps per generation, learning rate and batch (points drawn by their pool weight).
    config.model.train_steps = 300
    config.model.learning_rate = 3e-3
    config.model.batch_size = 64
    # Each generation starts from the previous generation's weights ("scratch": a fresh network).
    config.model.start_from = "previous"
    # alpha_t: cosine (Nichol & Dhariwal 2021); ancestral (DDPM) sampling, 32 uniform steps from t = 1 to t0 = 0.
    config.model.schedule = "cosine"
    config.model.sampler = "ancestral"
    config.model.sampling_steps = 32
    config.model.truncation = 0.0
    # lambda: scales the sampler's injected noise (MAD's sampling bias; 1: the plain sampler).
    config.model.sampling_bias = 1.0
    # The truth: 8 Gaussian modes of std 0.1 on the unit circle (a 64-wide MLP trained for a few hundred steps per
    # generation resolves std 0.1; the oracle's 0.05 needs thousands of steps).
    config.model.truth = "mixture"
    config.model.modes = 8
    config.model.mode_std = 0.1
    return common.finish(config)
