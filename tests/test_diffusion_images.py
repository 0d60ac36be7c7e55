"""Tests of the diffusion family's image side: the U-Net (shapes, time conditioning, parameter count, training beats
the best per-pixel linear denoiser), the image truths (per-chain training sets in [-1, 1]) and the image metrics."""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.analysis import image_grids, results
from collapse_jax.data import images as image_data
from collapse_jax.host import runner
from collapse_jax.models import base
from collapse_jax.models.diffusion import family, nets, sampling, training, unet
from collapse_jax.store import artifacts
from experiments.configs import diffusion_digits, diffusion_fashion_mnist


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def digits(data_dir):
    """The first 32 training digits as flat points in [-1, 1] (the image truths' scaling)."""
    images, _ = image_data.load_images("digits", "train", data_dir)
    return jnp.asarray(images[:32].reshape(32, 64), jnp.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def tiny_unet():
    """Two levels (8x8 -> 4x4), widths 8 and 16, GroupNorm with 4 groups: the CPU test size; matmul convolutions
    (vae/conv.py: XLA:CPU conv gradients in a scan are slow, 10x at the suite's -O0)."""
    net = unet.make_unet((8, 8), (8, 16), 4, matmul=True)
    return net.init, jax.jit(net.apply)


def randomized(params, key):
    """The params with a random output conv (the fresh net's is zero, so its output would not show any dependence)."""
    out = params["params"]["out"]
    keys = jax.random.split(key, len(out))
    params["params"]["out"] = {name: 0.1 * jax.random.normal(k, v.shape) for (name, v), k in zip(out.items(), keys)}
    return params


def test_unet_maps_flat_images_to_flat_noise_and_starts_at_zero(tiny_unet, digits):
    init, apply = tiny_unet
    params = init(jax.random.key(0))
    out = apply(params, digits[:4], jnp.full((4,), 0.3))
    assert out.shape == (4, 64) and out.dtype == jnp.float32
    # The output conv starts at zero (Nichol & Dhariwal's zero_module): the fresh net is the trivial predictor 0.
    np.testing.assert_array_equal(np.asarray(out), 0.0)


def test_unet_output_depends_on_t_and_each_image_only_on_its_own_t(tiny_unet, digits):
    init, apply = tiny_unet
    params = randomized(init(jax.random.key(0)), jax.random.key(1))
    x, times = digits[:4], jnp.asarray([0.1, 0.9, 0.1, 0.9])
    early, late = apply(params, x, jnp.full((4,), 0.1)), apply(params, x, jnp.full((4,), 0.9))
    # The time embedding enters every residual block: moving t from 0.1 to 0.9 must move the output by a visible
    # share of its size (an unused embedding gives exactly 0).
    assert float(jnp.max(jnp.abs(early - late))) > 0.05 * float(jnp.max(jnp.abs(early)))
    # GroupNorm normalizes per image: image i's output depends on x_i and t_i only. Other images and times around it
    # (same batch shape: one compile) leave it unchanged up to float32 round-off.
    mixed = apply(params, x, times)
    others = apply(params, jnp.concatenate([x[:1], digits[10:13]]), jnp.asarray([0.1, 0.5, 0.7, 0.2]))
    np.testing.assert_allclose(np.asarray(mixed[0]), np.asarray(others[0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed[::2]), np.asarray(early[::2]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed[1::2]), np.asarray(late[1::2]), atol=1e-5)


@pytest.mark.parametrize(
    "channels, groups, shape", [((8, 16), 4, (8, 8)), ((8, 16), 0, (8, 8)), ((4, 8, 16), 2, (28, 28))]
)
def test_unet_parameter_count_matches_the_closed_form(channels, groups, shape):
    net = unet.make_unet(shape, channels, groups, matmul=False)
    shapes = jax.eval_shape(net.init, jax.random.key(0))
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes)) == unet.parameter_count(channels, groups)


def test_unet_refuses_images_that_do_not_halve_exactly():
    with pytest.raises(ValueError, match=r"config.model.depth: 3 U-Net levels .* divisible by 4; the images are 6x6"):
        unet.make_unet((6, 6), (4, 8, 16), 0, matmul=False)


def per_pixel_linear_loss(points: np.ndarray, schedule: str, grid: int = 4000) -> float:
    """E_t sum_p alpha_t^2 v_p / (alpha_t^2 v_p + sigma_t^2), t ~ U[0, 1] (midpoint rule), v_p the pixel variances:
    the epsilon-MSE of the best denoiser that is affine in each pixel alone (Wiener's filter per pixel; Var[eps_p |
    x_p] for a Gaussian pixel of variance v_p, which the affine predictor attains for any pixel law)."""
    t = (np.arange(grid) + 0.5) / grid
    alpha, sigma = (np.asarray(v, np.float64) for v in sampling.alpha_sigma(schedule, jnp.asarray(t)))
    signal = alpha[:, None] ** 2 * np.var(np.asarray(points, np.float64), axis=0)[None, :]
    return float(np.mean(np.sum(signal / (signal + sigma[:, None] ** 2), axis=1)))


STEPS = 200


def test_a_trained_unet_beats_the_best_per_pixel_linear_denoiser(tiny_unet, digits):
    init, apply = tiny_unet
    params = init(jax.random.key(0))

    def per_image_loss(params, key):
        """sum_p (eps_hat - eps)^2 of 32 draws of (image, t ~ U[0, 1], eps ~ N(0, I)): Ho et al.'s simple loss."""
        index_key, time_key, noise_key = jax.random.split(key, 3)
        x0 = digits[jax.random.randint(index_key, (32,), 0, digits.shape[0])]
        t = jax.random.uniform(time_key, (32,))
        alpha, sigma = sampling.alpha_sigma("cosine", t)
        noise = jax.random.normal(noise_key, x0.shape)
        return jnp.sum((apply(params, alpha[:, None] * x0 + sigma[:, None] * noise, t) - noise) ** 2, axis=-1)

    @jax.jit
    def evaluate(params):
        """Mean loss over 128 x 32 = 4096 fixed draws and its standard error."""
        values = jax.lax.map(lambda k: per_image_loss(params, k), jax.random.split(jax.random.key(9), 128)).ravel()
        return jnp.mean(values), jnp.std(values) / np.sqrt(values.size)

    # The family's own training loop (AdamW on the weighted denoising loss), every digit weight 1.
    net = nets.Net(init=init, apply=apply)
    knobs = {"train_steps": jnp.int32(STEPS), "learning_rate": jnp.float32(3e-3)}
    train = jax.jit(
        lambda p: training.train(jax.random.key(1), net, p, digits, jnp.ones(32), knobs, "cosine", STEPS, 32)
    )
    start, start_error = evaluate(params)
    trained, trained_error = evaluate(train(params))
    d = digits.shape[1]
    # Untrained (eps_hat = 0): the loss is E|eps|^2 = d = 64; over 4096 draws its standard error is sqrt(2d / 4096)
    # = 0.18, so 4 standard errors bound the estimate's distance from d.
    assert abs(float(start) - d) < 4 * float(start_error)
    # The best per-pixel affine denoiser of these 32 digits reaches 17.0 (0.27 d); the trained net's estimate must lie
    # below it by 4 of its standard errors (~0.15): it uses neighbouring pixels, which no per-pixel filter can.
    bound = per_pixel_linear_loss(np.asarray(digits), "cosine")
    assert float(trained) + 4 * float(trained_error) < bound < 0.3 * d


def image_config(data_dir, **overrides):
    """The shipped digits config shrunk to seconds: the exact denoiser (no training to compile), 100 of the digits,
    a small classifier; the learned-denoiser fields back at their defaults (a closed-form score refuses others)."""
    learned = {f"model.{name}": field.default for name, field in family.LEARNED_FIELDS.items()}
    settings = {
        **learned,
        "model.score": "exact",
        "model.data_dir": data_dir,
        "model.train_size": 300,
        "model.test_size": 100,
        "model.classifier_epochs": 3,
        "model.classifier_channels": (8,),
        "model.classifier_feature_dim": 16,
        "model.preview_samples": 3,
        "model.sampling_steps": 8,
        "samples_per_generation": 100,
        "seeds": 2,
        "chain_block": 2,
        "num_generations": 2,
        "chunk_generations": 2,
        "checkpoint_every": 2,
        "make_plots": False,
        "regime.name": "replace",
    }
    return runner.as_config({**settings, **overrides}, diffusion_digits.get_config())


@pytest.fixture(scope="module")
def digits_model(data_dir):
    return base.make_model(image_config(data_dir))


def test_each_chain_trains_on_its_own_distinct_training_digits_in_minus_one_to_one(digits_model):
    truth = digits_model.image_truth
    training_rows = {tuple(row): index for index, row in enumerate(truth.train_images.reshape(-1, 64).tolist())}
    assert len(training_rows) == 300  # the 300 training digits are distinct images, so rows identify draws
    first = np.asarray(digits_model.real_data(jax.random.key(1), {}))
    second = np.asarray(digits_model.real_data(jax.random.key(2), {}))
    assert first.shape == (100, 64) and digits_model.dim == 64
    # x = u / 127.5 - 1 of the uint8 pixels u: ink-free pixels at -1, full ink at +1.
    pixels = np.round((first + 1.0) * 127.5).astype(np.int64)
    np.testing.assert_allclose(first, pixels / 127.5 - 1.0, atol=1e-6)
    assert first.min() == -1.0 and first.max() == 1.0
    drawn = [training_rows.get(tuple(row)) for row in pixels.tolist()]
    assert None not in drawn and len(set(drawn)) == 100  # training digits, none drawn twice within a chain
    # Two chains' keys draw different subsets; the same key the same one.
    assert set(drawn) != {training_rows[tuple(row)] for row in np.round((second + 1.0) * 127.5).astype(int).tolist()}
    np.testing.assert_array_equal(first, np.asarray(digits_model.real_data(jax.random.key(1), {})))


def test_real_test_digits_scored_as_samples_match_the_reference_and_noise_does_not(digits_model):
    truth, reference = digits_model.image_truth, digits_model.reference()
    real = jnp.asarray(truth.test_images.reshape(-1, 64), jnp.float32) / 127.5 - 1.0
    scores = jax.jit(truth.evaluate)(real, reference)
    # The samples are the reference's own test images: equal feature means and covariances make the Frechet distance
    # 0 up to float32 round-off in the eigenvalues of a [16, 16] product (~1e-6 of tr S each, so 1e-3 tr S is loose),
    # and every point lies in its own k-NN ball: precision = recall = 1 exactly.
    trace = float(jnp.sum(reference["feature_cov_sqrt"] ** 2))
    assert abs(float(scores["frechet_distance"])) < 1e-3 * trace
    assert float(scores["precision"]) == 1.0 and float(scores["recall"]) == 1.0
    # The histogram entropy is that of the classifier's predicted classes (image_metrics, tested against the VAE's).
    logits = truth.classifier.apply(reference["classifier"], truth.as_images(real))[0]
    counts = np.bincount(np.asarray(jnp.argmax(logits, axis=-1)), minlength=10) / 100
    expected = -np.sum(counts[counts > 0] * np.log(counts[counts > 0]))
    np.testing.assert_allclose(float(scores["class_histogram_entropy"]), expected, rtol=1e-5)
    noise = jax.random.uniform(jax.random.key(0), real.shape, minval=-1.0, maxval=1.0)
    noisy = jax.jit(truth.evaluate)(noise, reference)
    # Uniform noise: its features' law differs from the digits' by more than half the real spread tr S (measured 1.25
    # tr S with this 3-epoch classifier), and most noise images lie outside every real k-NN ball (measured 0.32).
    assert float(noisy["frechet_distance"]) > 0.5 * trace and float(noisy["precision"]) < 0.5


def test_the_exact_denoiser_loop_on_digits_saves_image_grids_and_the_report_shows_them(data_dir, tmp_path):
    workdir = str(tmp_path / "run")
    run = runner.run(image_config(data_dir), workdir)
    assert (
        set(run.metrics)
        >= {"frechet_distance", "precision", "recall", "class_histogram_entropy", "train_coverage", "memorized_share"}
        and "energy_distance" not in run.metrics
    )
    assert np.isfinite(run.metrics["frechet_distance"]).all()
    ids, images = artifacts.load(workdir, "sample_images", 2)
    assert images.shape == (2, 3, 8, 8) and images.min() >= 0.0 and images.max() <= 1.0
    lines = image_grids.section(results.load(workdir), workdir)
    assert lines[0] == "## Samples per generation" and os.path.exists(
        os.path.join(workdir, "plots", "sample_images_group_0.png")
    )
    assert "![sample_images" in "\n".join(lines)


def test_the_unet_score_builds_the_registered_unet_of_width_and_depth(data_dir):
    model = base.make_model(
        image_config(data_dir, **{"model.score": "unet", "model.width": 8, "model.depth": 2, "model.norm_groups": 4})
    )
    shapes = jax.eval_shape(model.net.init, jax.random.key(0))
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes)) == unet.parameter_count((8, 16), 4)


def test_bad_image_settings_are_one_line_errors(data_dir):
    cases = [
        ({"model.score": "unet", "model.truth": "mixture"}, "config.model.truth: score = 'unet' needs an image truth"),
        ({"samples_per_generation": 400}, "config.model.samples_per_generation: the digits training set holds 300"),
        ({"model.score": "unet", "model.depth": 5}, "config.model.depth: 5 U-Net levels halve the image 4 times"),
        ({"model.score": "unet", "model.width": 12, "model.norm_groups": 8}, "config.model.norm_groups: 8 GroupNorm"),
    ]
    for overrides, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            base.make_model(image_config(data_dir, **overrides))


def test_fashion_mnist_truth_reads_the_idx_files_as_784_pixel_points(tmp_path):
    from test_data import write_idx

    rng = np.random.default_rng(0)
    source = tmp_path / "idx"
    source.mkdir()
    for stem, shape in (("train-images-idx3-ubyte", (40, 28, 28)), ("t10k-images-idx3-ubyte", (20, 28, 28))):
        write_idx(source / stem, rng.integers(0, 256, shape), compress=False)
    for stem, size in (("train-labels-idx1-ubyte", 40), ("t10k-labels-idx1-ubyte", 20)):
        write_idx(source / stem, rng.integers(0, 10, size), compress=False)
    config = image_config(
        str(tmp_path / "tfds"),
        **{
            "model.truth": "fashion_mnist",
            "model.source_dir": str(source),
            "model.train_size": None,
            "model.test_size": None,
            "samples_per_generation": 30,
            "model.score": "unet",
            "model.width": 8,
            "model.depth": 3,
            "model.norm_groups": 4,
        },
    )
    model = base.make_model(config)
    assert model.dim == 784 and model.image_truth.image_shape == (28, 28)
    assert model.real_data(jax.random.key(0), {}).shape == (30, 784)
    assert sum(x.size for x in jax.tree.leaves(jax.eval_shape(model.net.init, jax.random.key(0)))) == (
        unet.parameter_count((8, 16, 32), 4)
    )


@pytest.mark.skipif(not os.path.isdir(image_data.FASHION_MNIST_DIR), reason="Debian's dataset-fashion-mnist absent")
def test_the_shipped_fashion_mnist_config_builds_its_model():
    model = base.make_model(runner.as_config({}, diffusion_fashion_mnist.get_config()))
    assert model.dim == 784 and model.real_data_size <= 60_000
