"""A U-Net diffusion model in the loop on Fashion-MNIST at accelerator sizes: Alemohammad et al.'s MAD loops on 28x28.

Alemohammad et al. ("Self-Consuming Generative Models Go MAD", ICLR 2024) retrain DDPMs on their own samples for
several generations: the fully synthetic loop (replace) degrades quality and diversity; keeping every generation's data
(accumulate, Gerstgrasser et al. 2024) or a share of real data holds it (Bertrand et al., ICLR 2024). Replace vs
accumulate at real share 0 and 0.1, 4 seeds, a 3-level U-Net (32/64/128 channels at 28/14/7), DDPM sampling.
Needs Debian's `dataset-fashion-mnist` (or config.model.source_dir pointing at the four IDX files).

Launch:  python -m experiments.main --config=experiments/configs/diffusion_fashion_mnist.py --workdir=/tmp/diff_fashion
Check first: the same command with --dry_run (settings, static groups, memory; writes nothing).
Runtime: not measured on an accelerator. FLOP estimate: the U-Net (1.37M parameters) costs ~0.24 GFLOP per 28x28 image
forward (~0.73 with the backward): 3,000 steps x 128 images = 280 TFLOP of training and 5,000 samples x 100 steps =
120 TFLOP of sampling per chain per generation, ~38 PFLOP for the sweep (16 chains x 6 fits): ~30 min at 20 TFLOP/s.
Dry run (fake IDX files of the real shapes, this CPU): 2 static groups of 8 chains, 4 compiles; the plan's per-chain
estimate is 218 MiB (replace) / 574 MiB (accumulate), to which the memorization pair adds its [capacity, capacity]
pool distances (accumulate: 30,000^2 x 4 B = 3.6 GB per chain, 14.4 GB per block of 4).
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    # M: each generation's training set and the number of samples drawn; each chain's real set is M distinct training
    # images drawn with its own key (of 60,000). The memorization pair's nearest-neighbour distances within the pool are
    # a [capacity, capacity] matrix per chain: 5,000 keeps accumulate's (capacity 6 M = 30,000) at 3.6 GB per chain.
    config.samples_per_generation = 5000
    config.seeds = 4
    config.num_generations = 5
    config.chunk_generations = 1
    # Chains per vmapped block: one block per (regime, real share) group of 4 seeds.
    config.chain_block = 4
    config.checkpoint_every = 1
    # Fully synthetic (replace) vs keeping every generation's data (accumulate); rho: real share of each generation.
    config.regime.name = ("replace", "accumulate")
    config.regime.real_fraction = (0.0, 0.1)

    # Model family: the package collapse_jax/models/diffusion/.
    config.model.name = "diffusion"
    # The truth: Fashion-MNIST (collapse_jax/data/images.py; 60k train / 10k test, 28x28).
    config.model.truth = "fashion_mnist"
    # Prepared tfds data dir (None: $COLLAPSE_JAX_DATA_DIR or ~/.cache/collapse_jax/tensorflow_datasets) and the IDX
    # folder (None: Debian's /usr/share/datasets/fashion-mnist).
    config.model.data_dir = None
    config.model.source_dir = None
    # The denoiser: a U-Net of 32 channels at 28x28, 64 at 14x14, 128 at 7x7 (depth 3), GroupNorm 8 groups.
    config.model.score = "unet"
    config.model.width = 32
    config.model.depth = 3
    config.model.norm_groups = 8
    # AdamW: 3,000 steps of 128 images per generation (77 epochs of M), learning rate 1e-3 (DDPM's CIFAR setting is
    # 2e-4 over 800k steps; a shorter schedule takes a larger rate).
    config.model.train_steps = 3000
    config.model.learning_rate = 1e-3
    config.model.batch_size = 128
    # Each generation fine-tunes the previous generation's network (MAD retrains from the last model).
    config.model.start_from = "previous"
    # Cosine schedule, DDPM (ancestral) sampling in 100 uniform steps to t0 = 0, plain sampler (lambda = 1).
    config.model.schedule = "cosine"
    config.model.sampler = "ancestral"
    config.model.sampling_steps = 100
    config.model.truncation = 0.0
    config.model.sampling_bias = 1.0
    # Generated images saved per chain per generation for the report's grids.
    config.model.preview_samples = 8
    # Feature classifier (trained once on the 60k real training images; the VAE's Fashion-MNIST setting) and
    # precision / recall with 5,000 points per side, k = 5 (Kynkaanniemi et al. 2019).
    config.model.classifier_channels = (32, 64)
    config.model.classifier_feature_dim = 128
    config.model.classifier_epochs = 5
    config.model.precision_recall_size = 5000
    config.model.precision_recall_k = 5
    # Images per chunk when scoring with the classifier (bounds activation memory per chain).
    config.model.chunk_size = 1024
    return common.finish(config)
