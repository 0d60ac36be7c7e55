"""A U-Net diffusion model in the loop on scikit-learn's 8x8 digits: the CPU-sized image setting of the MAD loops.

Alemohammad et al. ("Self-Consuming Generative Models Go MAD", ICLR 2024) retrain DDPMs on their own samples: the fully
synthetic loop (replace) loses quality and diversity (Frechet distance up, precision / recall down), while keeping every
generation's data (accumulate, Gerstgrasser et al. 2024) holds it. Here a small U-Net is trained per chain on 8x8 digits
scaled to [-1, 1] (each chain draws its own M real digits), sampled by DDPM; metrics in the VAE's classifier features.

Launch:  python -m experiments.main --config=experiments/configs/diffusion_digits.py --workdir=/tmp/diffusion_digits
Runtime: 29 min 49 s wall, 12.5 min CPU, on the 2-core CPU shared with other sessions at load average 13-15 (2 regimes x
4 chains x 5 generations of 400 AdamW steps, batch 32, and 300 samples in 32 steps; compiles dominate; 1.8 GB RSS).
Measured (median of 4 chains, generation 0 -> 5): replace FD 18.6 -> 104, recall 0.89 -> 0.07, class entropy 2.22 ->
1.47; accumulate FD 18.6 -> 29.3, recall 0.89 -> 0.78, entropy 2.22 -> 2.12 (the grids: replace drifts to few shapes).
Sample grids: in report.md ("Samples per generation"), or python -m experiments.vae_grids --workdir=DIR
--artifacts=sample_images. Override: --config.seeds=8 --config.model.train_steps=1000 --config.model.width=32
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # M: each generation's training set (and the number of samples the model draws); each chain's real set is M
    # distinct digits of the 1,497 training digits, drawn with its own key.
    config.samples_per_generation = 300
    config.seeds = 4
    config.num_generations = 5
    config.chunk_generations = 5
    # Chains per vmapped block: one block per regime.
    config.chain_block = 4
    config.checkpoint_every = 5
    # Fully synthetic (replace) vs keeping every generation's data (accumulate); no real share (regime.real_fraction 0).
    config.regime.name = ("replace", "accumulate")

    # Model family: the package collapse_jax/models/diffusion/.
    config.model.name = "diffusion"
    # The truth: scikit-learn's 8x8 digits (collapse_jax/data/images.py; 1,497 train / 300 test).
    config.model.truth = "digits"
    # The denoiser: a U-Net (collapse_jax/models/diffusion/unet.py) of width channels at 8x8 and 2 * width at 4x4
    # (depth = 2 levels), GroupNorm with norm_groups groups; it predicts the noise eps.
    config.model.score = "unet"
    config.model.width = 16
    config.model.depth = 2
    config.model.norm_groups = 8
    # AdamW steps per generation, learning rate and batch (pool images drawn by their weight).
    config.model.train_steps = 400
    config.model.learning_rate = 2e-3
    config.model.batch_size = 32
    # Each generation starts from the previous generation's weights ("scratch": a fresh network).
    config.model.start_from = "previous"
    # alpha_t: cosine (Nichol & Dhariwal 2021); ancestral (DDPM) sampling, 32 uniform steps from t = 1 to t0 = 0.
    config.model.schedule = "cosine"
    config.model.sampler = "ancestral"
    config.model.sampling_steps = 32
    config.model.truncation = 0.0
    # lambda: scales the sampler's injected noise (MAD's sampling bias; 1: the plain sampler).
    config.model.sampling_bias = 1.0
    # Generated digits saved per chain per generation for the report's image grids.
    config.model.preview_samples = 8
    # The feature classifier of the image metrics (trained once on the real training digits, like the VAE's), and
    # precision / recall's points per side (None: M = 300, the test split's size) and k (Kynkaanniemi et al.'s 5).
    config.model.classifier_channels = (16, 32)
    config.model.classifier_feature_dim = 64
    config.model.classifier_epochs = 30
    config.model.precision_recall_size = None
    config.model.precision_recall_k = 5
    return common.finish(config)
