"""VAE collapse on scikit-learn's 8x8 digits: the CPU-sized version of Shumailov et al. 2024's MNIST VAE experiment.

Replace (no real data) loses latent spread (latent_std_gen0_encoder falls, frechet_distance rises) while accumulate
stays near generation 0 (Gerstgrasser et al. 2024). The data are binarized draws from the decoder (sample_mode
bernoulli): with Shumailov's decoded means (--config.model.sample_mode=mean) each refit sees a deterministic blur and
both regimes collapse to one class (notes/vae.md). Small nets and few epochs: the sweep trains on a 2-core CPU.

Launch:  python -m experiments.main --config=experiments/configs/vae_digits.py --workdir=/tmp/vae_digits
Runtime: 1 min 03 s on an idle 2-core CPU (2026-12-01; 2 groups x 4 chains x 10 generations; notes/vae.md).
Sample grids (one PNG per knob group): python -m experiments.vae_grids --workdir=/tmp/vae_digits
Override any field: --config.num_generations=20 --config.model.train_from=previous --config.seeds=8
"""

import ml_collections

from experiments.configs import common


def get_config() -> ml_collections.ConfigDict:
    config = common.get_config()
    config.seeds = 4
    config.num_generations = 10
    # M: images each generation trains on and each model decodes (= the 1,497 real training digits).
    config.samples_per_generation = 1497

    # replace | accumulate | accumulate_subsample | fresh (fresh needs a model of the truth: not available for images).
    config.regime.name = ("replace", "accumulate")
    # rho: share of each generation's M images drawn from the real training set (Shumailov's "10% original data").
    config.regime.real_fraction = (0.0,)
    # The VAE has no sufficient statistics; accumulate keeps the raw pool (capacity (1 + num_generations) x M images).
    config.regime.keep_raw_pool = True

    # Model family: collapse_jax/models/vae/family.py.
    config.model.name = "vae"
    # digits (8x8, 1,497 train / 300 test, bundled with scikit-learn) or fashion_mnist_local (28x28, 60k / 10k).
    config.model.dataset = "digits"
    # Prepared tfds data dir (None: $COLLAPSE_JAX_DATA_DIR or ~/.cache/collapse_jax/tensorflow_datasets).
    config.model.data_dir = None
    # Folder of the Fashion-MNIST IDX files (None: Debian's /usr/share/datasets/fashion-mnist); unused for digits.
    config.model.source_dir = None
    # Use only the first N training / test images (None: all).
    config.model.train_size = None
    config.model.test_size = None
    # Encoder conv widths (kernel 4, stride 2 each; the decoder mirrors them); Shumailov: (64, 128) on MNIST.
    config.model.encoder_channels = (16, 32)
    # Latent dimension (Shumailov: 20).
    config.model.latent_dim = 8
    # Passes over the valid pool per generation (Shumailov: 30) and minibatch size (Shumailov: 256).
    config.model.epochs = 20
    config.model.batch_size = 32
    # Fixed-compute alternative to epochs: this many minibatches drawn uniformly from the valid pool (None: use epochs).
    # 940 = 20 epochs x 47 batches of M = 1,497, so replace trains as long as with epochs while accumulate's growing
    # pool (static capacity (1 + num_generations) x M) costs no more per generation.
    config.model.steps_per_generation = 940
    # Adam learning rate (Shumailov: 1e-3 for 30 epochs of 60k images; 2e-3 converges in 20 epochs of 1.5k digits).
    config.model.learning_rate = 2e-3
    # L2 weight decay added to the gradient, like torch Adam(weight_decay) (Shumailov: 1e-5).
    config.model.weight_decay = 1e-5
    # beta in BCE + beta * KL (1 = the ELBO); a list sweeps it inside one compile.
    config.model.kl_weight = 1.0
    # tau: the next generation's data decodes z ~ N(0, tau^2 I) (1 = the prior); a list sweeps it.
    config.model.sampling_temperature = 1.0
    # scratch: a fresh VAE each generation; previous: fine-tune the last generation's VAE.
    config.model.train_from = "scratch"
    # bernoulli: binarized draws from the decoder, i.e. samples of the fitted model (what accumulate's bounded-error
    # argument assumes); mean: decoded Bernoulli means (Shumailov's notebook), a biased refit under which accumulate
    # also collapses here (latent std 0.51 -> 0.05 by generation 10 vs 0.60 -> 0.54 with bernoulli; notes/vae.md).
    config.model.sample_mode = "bernoulli"
    # Generated images used by the sample metrics (None: all M).
    config.model.metric_num_samples = None
    # Decoded samples per chain per generation saved as the `sample_images` artifact (0: none); draw the grids with
    # python -m experiments.vae_grids --workdir=DIR (one PNG per knob group: rows = generations, columns = samples).
    config.model.preview_images = 8
    # Points per side in precision / recall (Kynkaanniemi et al. 2019) and their k (the paper's k = 5).
    config.model.precision_recall_size = 300
    config.model.precision_recall_k = 5
    # Feature classifier (trained once on the real training split): conv widths (kernel 3, stride 2), feature size.
    config.model.classifier_channels = (16, 32)
    config.model.classifier_feature_dim = 64
    config.model.classifier_epochs = 30
    config.model.classifier_seed = 0
    # Images per chunk when decoding / scoring many images (bounds activation memory per chain).
    config.model.chunk_size = 512

    config.chunk_generations = 5
    # B = seeds: one block per group, no padding chains.
    config.chain_block = 4
    config.checkpoint_every = 5
    return common.finish(config)
