"""VAE collapse on Fashion-MNIST at full size: Shumailov et al. 2024's MNIST VAE setting, for an accelerator.

Shumailov's architecture and training (conv 64/128, latent 20, Adam 1e-3 + L2 1e-5, batch 256, 30 epochs of 60k images
per generation, decoded Bernoulli means as the next data set), 5 generations; replace vs accumulate, rho 0 and 0.1.
Needs Debian's `dataset-fashion-mnist` (or config.model.source_dir pointing at the four IDX files).

Launch:  python -m experiments.main --config=experiments/configs/vae_fashion_mnist.py --workdir=/tmp/vae_fashion
Runtime: GPU not measured (no accelerator lent yet); FLOP estimate 152 TFLOP per chain per generation (7,050 steps x
21.6 GFLOP), 14.7 PFLOP for the sweep: ~4-12 min of H100 compute. On a 2-core CPU ~1,600 training images/s per chain
(benchmarks/vae_throughput.py): ~19 min per chain per generation, ~30 h for this sweep; use vae_fashion_mnist_cpu.py.
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 4
    config.num_generations = 5
    # M: images each generation trains on and each model decodes (= the 60,000 real training images).
    config.samples_per_generation = 60_000

    # replace | accumulate | accumulate_subsample | fresh (fresh needs a model of the truth: not available for images).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's M images drawn from the real training set (Shumailov's "10% original data").
    config.regime.real_fraction = (0.0, 0.1)
    # The VAE has no sufficient statistics; accumulate keeps the raw pool (capacity (1 + num_generations) x M images).
    config.regime.keep_raw_pool = True

    # Model family: collapse_jax/models/vae/family.py.
    config.model.name = "vae"
    # digits (8x8, 1,497 train / 300 test, bundled with scikit-learn) or fashion_mnist_local (28x28, 60k / 10k).
    config.model.dataset = "fashion_mnist_local"
    # Prepared tfds data dir (None: $COLLAPSE_JAX_DATA_DIR or ~/.cache/collapse_jax/tensorflow_datasets).
    config.model.data_dir = None
    # Folder of the Fashion-MNIST IDX files (None: Debian's /usr/share/datasets/fashion-mnist); unused for digits.
    config.model.source_dir = None
    # Use only the first N training / test images (None: all).
    config.model.train_size = None
    config.model.test_size = None
    # Encoder conv widths (kernel 4, stride 2 each; the decoder mirrors them); Shumailov: (64, 128) on MNIST.
    config.model.encoder_channels = (64, 128)
    # Latent dimension (Shumailov: 20).
    config.model.latent_dim = 20
    # Passes over the valid pool per generation (Shumailov: 30) and minibatch size (Shumailov: 256).
    config.model.epochs = 30
    config.model.batch_size = 256
    # Fixed-compute alternative to epochs: 7,050 = 30 epochs x 235 batches of M = 60,000, so replace trains as long as
    # Shumailov while accumulate (pool capacity 60k + 5 x 66k images, ~1.2 GB per chain) costs no more per generation.
    # None: epochs over the whole static pool (accumulate then costs (1 + num_generations) times more).
    config.model.steps_per_generation = 7050
    # Adam learning rate (Shumailov: 1e-3).
    config.model.learning_rate = 1e-3
    # L2 weight decay added to the gradient, like torch Adam(weight_decay) (Shumailov: 1e-5).
    config.model.weight_decay = 1e-5
    # beta in BCE + beta * KL (1 = the ELBO); a list sweeps it inside one compile.
    config.model.kl_weight = 1.0
    # tau: the next generation's data decodes z ~ N(0, tau^2 I) (1 = the prior); a list sweeps it.
    config.model.sampling_temperature = 1.0
    # scratch: a fresh VAE each generation; previous: fine-tune the last generation's VAE.
    config.model.train_from = "scratch"
    # mean: decoded Bernoulli means are the data (Shumailov); bernoulli: binarized draws from them. On digits, means
    # make accumulate collapse too while bernoulli keeps it near generation 0 (notes/vae.md): ("mean", "bernoulli").
    config.model.sample_mode = "mean"
    # Generated images used by the sample metrics (None: all M).
    config.model.metric_num_samples = 10_000
    # Decoded samples per chain per generation saved as the `sample_images` artifact (0: none); draw the grids with
    # python -m experiments.vae_grids --workdir=DIR (one PNG per knob group: rows = generations, columns = samples).
    config.model.preview_images = 8
    # Points per side in precision / recall (Kynkaanniemi et al. 2019) and their k (the paper's k = 5).
    config.model.precision_recall_size = 5_000
    config.model.precision_recall_k = 5
    # Feature classifier (trained once on the real training split): conv widths (kernel 3, stride 2), feature size.
    config.model.classifier_channels = (32, 64)
    config.model.classifier_feature_dim = 128
    config.model.classifier_epochs = 5
    config.model.classifier_seed = 0
    # Images per chunk when decoding / scoring many images (bounds activation memory per chain).
    config.model.chunk_size = 1024

    config.chunk_generations = 1
    # B = seeds: one block per group, no padding chains.
    config.chain_block = 4
    config.checkpoint_every = 1
    return common.finish(config)
