"""Tests of the VAE family: ELBO vs numpy, feature-space metrics vs scipy/brute force, masked training, collapse."""

import dataclasses
import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from conftest import assert_resumed
from sklearn.neighbors import NearestNeighbors

from collapse_jax.analysis import image_grids, results
from collapse_jax.host import runner, sweep
from collapse_jax.models import base
from collapse_jax.models.vae import image_metrics
from collapse_jax.models.vae.nets import (
    ConvTranspose2x,
    Decoder,
    Encoder,
    epoch_batches,
    negative_elbo,
    torch_default_init,
)
from collapse_jax.store import artifacts
from experiments.configs import vae_digits

KNOBS = {"seed": 0, "real_fraction": 0.0, "kl_weight": 1.0, "learning_rate": 2e-3, "sampling_temperature": 1.0}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def tiny_config(data_dir, **overrides):
    """The shipped digits config shrunk to seconds (compile time dominates): 300 digits, one conv layer, few steps.

    Decoded means (deterministic given z) so that sampling claims, e.g. temperature 0 -> one image, are exact.
    """
    settings = {"model.data_dir": data_dir, "model.train_size": 300, "model.test_size": 100,
                "model.encoder_channels": (8,), "model.latent_dim": 4, "model.steps_per_generation": 60,
                "model.precision_recall_size": 100, "model.classifier_epochs": 3, "model.classifier_channels": (8,),
                "model.classifier_feature_dim": 16, "model.preview_images": 3, "model.sample_mode": "mean",
                "samples_per_generation": 300,
                "seeds": 2, "chain_block": 2, "num_generations": 2, "chunk_generations": 1, "checkpoint_every": 1,
                "make_plots": False, "regime.name": "replace"}  # fmt: skip
    return runner.as_config({**settings, **overrides}, vae_digits.get_config())


@pytest.fixture(scope="module")
def tiny_model(data_dir):
    return base.make_model(tiny_config(data_dir))


def numpy_negative_elbo(model, networks, images, noise, beta):
    """float64 BCE(sum) + beta * KL at z = mu + sigma * noise, the encoder / decoder outputs taken from the model."""
    mean, log_variance = (np.asarray(a, np.float64) for a in model.encoder.apply(networks["encoder"], images))
    latents = mean + np.exp(0.5 * log_variance) * np.asarray(noise, np.float64)
    logits = np.asarray(model.decoder.apply(networks["decoder"], jnp.asarray(latents, jnp.float32)), np.float64)
    p, x = 1.0 / (1.0 + np.exp(-logits)), np.asarray(images, np.float64)
    bce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2))  # torch BCE(reduction="sum") per image
    kl = 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1.0 - log_variance, axis=1)  # Kingma & Welling, appendix B
    return bce + beta * kl


def test_negative_elbo_matches_numpy_bce_plus_kl(tiny_model):
    images = jnp.asarray(tiny_model.train_images[:5], jnp.float32) / 255.0
    networks = tiny_model.init(jax.random.PRNGKey(1), KNOBS)["networks"]
    key, beta = jax.random.PRNGKey(2), 0.7
    got = negative_elbo(tiny_model.encoder, tiny_model.decoder, networks, images, key, beta)
    noise = jax.random.normal(key, (5, tiny_model.encoder.latent_dim))
    # float32 sums of 64 pixel terms of size ~0.7: relative error ~1e-6; 1e-5 leaves room for the latents' round-off.
    np.testing.assert_allclose(
        np.asarray(got), numpy_negative_elbo(tiny_model, networks, images, noise, beta), rtol=1e-5
    )


def test_log_likelihood_is_each_images_elbo_at_beta_one_with_fixed_noise(tiny_model):
    # Chunks of 7 over 20 images (the last one padded) must not change any image's score.
    model = dataclasses.replace(tiny_model, chunk_size=7)
    params = model.init(jax.random.PRNGKey(1), KNOBS)  # the formula needs no trained model (saves a compile)
    images = jnp.concatenate([model.real_data(None, KNOBS)[:12], model.sample(jax.random.PRNGKey(3), params, 8, KNOBS)])
    got = np.asarray(jax.jit(model.log_likelihood)(params, images, KNOBS))
    # The documented noise: one N(0, I) row per image from PRNGKey(0), i.e. the training loss's draw for that key.
    noise = jax.random.normal(jax.random.PRNGKey(0), (20, model.encoder.latent_dim))
    np.testing.assert_allclose(got, -numpy_negative_elbo(model, params["networks"], images, noise, 1.0), rtol=1e-5)
    loss = negative_elbo(model.encoder, model.decoder, params["networks"], images, jax.random.PRNGKey(0), 1.0)
    np.testing.assert_allclose(got, -np.asarray(loss), rtol=1e-5)
    # Deterministic in (params, x) and independent of the training beta (a bound on log p(x), not the beta-loss).
    again = model.log_likelihood(params, images, {**KNOBS, "kl_weight": 0.3})
    np.testing.assert_allclose(np.asarray(again), got, rtol=1e-6)


def test_subpixel_transposed_conv_equals_flax_conv_transpose_in_value_and_gradient():
    # The decoder's 4x4 stride-2 SAME transposed conv as one stride-1 conv over 4 phases must be the same function of
    # the same params; float32 sums of 4 x 6 products of unit normals: round-off ~1e-6, 1e-5 absolute is ample.
    inputs = jax.random.normal(jax.random.PRNGKey(0), (3, 7, 5, 6))
    flax_layer = nn.ConvTranspose(4, (4, 4), strides=(2, 2), padding="SAME")
    params = flax_layer.init(jax.random.PRNGKey(1), inputs)
    params = jax.tree.map(lambda leaf: jax.random.normal(jax.random.PRNGKey(2), leaf.shape), params)
    ours = ConvTranspose2x(4)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), inputs)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_allclose(ours.apply(params, inputs), flax_layer.apply(params, inputs), atol=1e-5)
    loss = lambda layer: jax.jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(layer.apply(p, x))), argnums=(0, 1)))  # noqa: E731
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4),
        loss(ours)(params, inputs),
        loss(flax_layer)(params, inputs),
    )


def test_networks_start_from_torch_default_init_at_shumailov_sizes():
    # torch reset_parameters: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in = in * k * k for Conv2d and
    # Linear, out * k * k for ConvTranspose2d (torch reads axis 1 of its [in, out, k, k] weight).
    encoder, decoder = Encoder((64, 128), 20), Decoder((64, 128), (28, 28))
    shapes = jax.eval_shape(
        lambda k: {"encoder": encoder.init(k, jnp.zeros((1, 28, 28))), "decoder": decoder.init(k, jnp.zeros((1, 20)))},
        jax.random.PRNGKey(0),
    )
    params = torch_default_init(jax.random.PRNGKey(1), shapes)
    fan_in = {("encoder", "Conv_0"): 1 * 16, ("encoder", "Conv_1"): 64 * 16, ("encoder", "mean"): 128 * 7 * 7,
              ("encoder", "log_variance"): 128 * 7 * 7, ("decoder", "Dense_0"): 20,
              ("decoder", "ConvTranspose_0"): 64 * 16, ("decoder", "ConvTranspose_1"): 1 * 16}  # fmt: skip
    for (net, layer), fan in fan_in.items():
        bound = 1.0 / np.sqrt(fan)
        for name, value in params[net]["params"][layer].items():
            value = np.asarray(value)
            assert value.shape == shapes[net]["params"][layer][name].shape and np.abs(value).max() <= bound
            if value.size >= 1000:
                # std of U(-b, b) is b / sqrt(3); its relative standard error is ~0.45 / sqrt(n) <= 1.4%: 6% = 4 SE.
                assert np.std(value) == pytest.approx(bound / np.sqrt(3), rel=0.06), (net, layer, name)


def test_frechet_distance_matches_the_scipy_sqrtm_formula():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    fake = 0.5 + rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    m_r, s_r = real.mean(0), np.cov(real, rowvar=False)
    m_f, s_f = fake.mean(0), np.cov(fake, rowvar=False)
    expected = np.sum((m_r - m_f) ** 2) + np.trace(s_r + s_f - 2.0 * np.real(scipy.linalg.sqrtm(s_r @ s_f)))
    mean, cov = image_metrics.feature_moments(jnp.asarray(fake, jnp.float32))
    got = image_metrics.frechet_distance(
        jnp.asarray(m_r, jnp.float32), jnp.asarray(image_metrics.psd_sqrt(s_r), jnp.float32), mean, cov
    )
    # float32 eigendecomposition of 6x6 covariances with entries ~10: ~1e-5 relative; FD here is ~20.
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)
    same = image_metrics.frechet_distance(
        jnp.asarray(m_f, jnp.float32), jnp.asarray(image_metrics.psd_sqrt(s_f), jnp.float32), mean, cov
    )
    assert abs(float(same)) < 1e-3 * expected  # a distribution is at distance 0 from itself


def test_precision_recall_match_brute_force_with_scikit_learn_radii():
    rng = np.random.default_rng(1)
    real, fake, k = rng.normal(size=(60, 3)), 0.7 + rng.normal(size=(50, 3)), 5
    # k-th neighbour excluding the point itself = the (k+1)-th of a query that includes it.
    radius_real = NearestNeighbors(n_neighbors=k + 1).fit(real).kneighbors(real)[0][:, k]
    radius_fake = NearestNeighbors(n_neighbors=k + 1).fit(fake).kneighbors(fake)[0][:, k]
    distances = np.linalg.norm(fake[:, None, :] - real[None, :, :], axis=-1)
    expected_precision = np.mean([(distances[i] <= radius_real).any() for i in range(len(fake))])
    expected_recall = np.mean([(distances[:, j] <= radius_fake).any() for j in range(len(real))])
    real32, fake32 = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    radius_sq = image_metrics.kth_neighbour_radius_sq(real32, k)
    np.testing.assert_allclose(np.sqrt(radius_sq), radius_real, rtol=1e-4)
    precision, recall = image_metrics.precision_recall(
        real32, radius_sq, fake32, image_metrics.kth_neighbour_radius_sq(fake32, k)
    )
    assert float(precision) == pytest.approx(expected_precision) and float(recall) == pytest.approx(expected_recall)
    assert 0.0 < float(recall) < 1.0  # the shift makes both metrics informative, not trivially 0 or 1


def test_class_histogram_entropy_is_log_k_when_balanced_and_zero_for_one_class():
    balanced = jax.nn.one_hot(jnp.arange(100) % 10, 10)
    assert float(image_metrics.class_histogram_entropy(balanced)) == pytest.approx(np.log(10), rel=1e-6)
    assert float(image_metrics.class_histogram_entropy(jax.nn.one_hot(jnp.full(7, 3), 10))) == 0.0


def test_an_epoch_visits_every_valid_pool_point_exactly_once_and_never_an_invalid_one():
    weights = jnp.asarray(np.random.default_rng(2).random(103) < 0.6, jnp.float32)
    index, mask = epoch_batches(jax.random.PRNGKey(3), weights, 16)
    visited = np.asarray(index)[np.asarray(mask) > 0]
    np.testing.assert_array_equal(np.sort(visited), np.flatnonzero(np.asarray(weights)))


def test_masked_pool_points_do_not_change_the_fit(tiny_model):
    # Epoch mode: masked points sort last and their batches are skipped (fixed-step mode gives them probability 0).
    model = dataclasses.replace(tiny_model, steps_per_generation=None, epochs=2)
    real = model.real_data(None, KNOBS)[:128]
    weights = jnp.concatenate([jnp.ones(64), jnp.zeros(64)])
    garbage_a, garbage_b = jnp.zeros((64, 8, 8)), jnp.ones((64, 8, 8))
    fit = jax.jit(
        lambda data: model.fit(jax.random.PRNGKey(0), data, weights, KNOBS, model.init(jax.random.PRNGKey(1), KNOBS))
    )
    a = fit(jnp.concatenate([real[:64], garbage_a]))
    b = fit(jnp.concatenate([real[:64], garbage_b]))
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_first_fit_keeps_its_encoder_as_generation_zero_and_later_fits_carry_it(tiny_model):
    real = tiny_model.real_data(None, KNOBS)
    weights = jnp.ones(real.shape[0])
    fit = jax.jit(lambda key, prev: tiny_model.fit(key, real, weights, KNOBS, prev))
    first = fit(jax.random.PRNGKey(0), tiny_model.init(jax.random.PRNGKey(1), KNOBS))
    jax.tree.map(np.testing.assert_array_equal, first["encoder_gen0"], first["networks"]["encoder"])
    second = fit(jax.random.PRNGKey(5), first)
    jax.tree.map(np.testing.assert_array_equal, second["encoder_gen0"], first["networks"]["encoder"])
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), second["networks"], first["networks"])
    assert max(jax.tree.leaves(moved)) > 1e-3  # the second generation really is a new network


def test_fine_tuning_starts_from_the_previous_generation(data_dir):
    model = base.make_model(tiny_config(data_dir, **{"model.train_from": "previous"}))
    real = model.real_data(None, KNOBS)
    first = model.fit(
        jax.random.PRNGKey(0), real, jnp.ones(real.shape[0]), KNOBS, model.init(jax.random.PRNGKey(1), KNOBS)
    )
    # With a vanishing learning rate a fine-tuned generation stays where the previous one ended.
    still = model.fit(jax.random.PRNGKey(2), real, jnp.ones(real.shape[0]), {**KNOBS, "learning_rate": 1e-9}, first)
    gap = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), still["networks"], first["networks"])
    assert max(jax.tree.leaves(gap)) < 1e-5


# ~20 s of training on a loaded 2-core CPU
def test_trained_vae_beats_the_independent_pixel_baseline_on_real_test_elbo(data_dir):
    # The best z-free Bernoulli model (pixel means of the training set, KL = 0) is a lower bar any fitted VAE clears.
    # The net sizes the margins below were measured with (the fast tests' one-layer nets are smaller).
    sizes = {"model.encoder_channels": (8, 16), "model.classifier_channels": (8, 16)}
    model = base.make_model(tiny_config(data_dir, **{"model.steps_per_generation": 400, **sizes}))
    real = model.real_data(None, KNOBS)
    params = jax.jit(model.fit)(
        jax.random.PRNGKey(0), real, jnp.ones(real.shape[0]), KNOBS, model.init(jax.random.PRNGKey(1), KNOBS)
    )
    samples = model.sample(jax.random.PRNGKey(2), params, 300, KNOBS)
    metrics = jax.jit(model.evaluate)(params, samples, model.reference(), KNOBS)
    p = np.clip(np.asarray(real, np.float64).mean(0), 1e-6, 1 - 1e-6)
    test = np.asarray(model.test_images, np.float64) / 255.0
    baseline = np.mean(np.sum(test * np.log(p) + (1 - test) * np.log(1 - p), axis=(1, 2)))
    # Measured -25.8 vs -27.0 nats; the mean over 100 images of one reparameterized draw each varies by ~0.1 nats, so a
    # 0.5-nat margin is ~5 sigma while still requiring the latent code to carry real information.
    assert float(metrics["elbo_real_test"]) > baseline + 0.5, (float(metrics["elbo_real_test"]), baseline)
    # Samples spread over more than two classes: entropy above ln 2 (measured 1.08 with this 3-epoch classifier and
    # 400-step VAE; the real test set scores ln 10 = 2.3, a collapse onto one class 0).
    assert float(metrics["class_histogram_entropy"]) > np.log(2.0)


def test_zero_temperature_decodes_one_image_so_spread_metrics_vanish(tiny_model):
    params = tiny_model.init(jax.random.PRNGKey(0), KNOBS)
    knobs = {**KNOBS, "sampling_temperature": 0.0}
    samples = tiny_model.sample(jax.random.PRNGKey(1), params, 50, knobs)
    np.testing.assert_array_equal(np.asarray(samples), np.broadcast_to(np.asarray(samples[:1]), samples.shape))
    metrics = tiny_model.evaluate(params, samples, tiny_model.reference(), knobs)
    assert float(metrics["latent_std_gen0_encoder"]) < 1e-5 and float(metrics["class_histogram_entropy"]) == 0.0
    assert float(metrics["recall"]) < 0.05  # one point covers almost none of the real test set


def test_bernoulli_sample_mode_binarizes_the_decoded_means(data_dir):
    model = base.make_model(tiny_config(data_dir, **{"model.sample_mode": "bernoulli"}))
    samples = np.asarray(model.sample(jax.random.PRNGKey(1), model.init(jax.random.PRNGKey(0), KNOBS), 40, KNOBS))
    assert set(np.unique(samples)) <= {0.0, 1.0} and 0.05 < samples.mean() < 0.95


@pytest.mark.parametrize(
    "field, value",
    [("dataset", "mnist"), ("train_from", "warm"), ("sample_mode", "logits"), ("latent_dim", 0),
     ("encoder_channels", (8, 16, 32, 64)), ("learning_rate", [1e-3, -1.0]), ("kl_weight", -0.5),
     ("steps_per_generation", 0), ("precision_recall_k", 500), ("preview_images", 301)],
)  # fmt: skip
def test_bad_config_is_a_one_line_value_error_naming_the_field(data_dir, field, value):
    # The sweep checks the declarations, then builds each group (the checks that compare fields or need the images).
    with pytest.raises(ValueError, match=f"config.model.{field}") as error:
        sweep.expand(tiny_config(data_dir, **{f"model.{field}": value}))
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def digits_model(data_dir):
    """All 1,497 / 300 digits and the shipped config's classifier (97.7% test accuracy; ~10 s to train)."""
    shipped = {"model.train_size": None, "model.test_size": None, "model.precision_recall_size": 300,
               "model.classifier_epochs": 30, "model.classifier_channels": (16, 32),
               "model.classifier_feature_dim": 64}  # fmt: skip
    return base.make_model(tiny_config(data_dir, **shipped))


def test_verifier_passes_real_digits_and_rejects_pure_noise(digits_model):
    good = jax.jit(digits_model.is_good)
    test = jnp.asarray(digits_model.test_images, jnp.float32) / 255.0
    # The threshold holds mass 0.95 of the 300 test scores by construction (>= 285 pass); the jitted scores may differ
    # from the host's by round-off at the boundary, so one image of slack.
    assert float(jnp.mean(good(test, KNOBS))) >= 0.95 - 1 / 300
    # Training digits never set the threshold (they fit the class Gaussians): if they scored like test digits, 0.95
    # would pass with binomial sd sqrt(0.95 * 0.05 / 1497) = 0.006; 0.90 is 8 sd below. Measured 0.965.
    assert float(jnp.mean(good(digits_model.real_data(None, KNOBS), KNOBS))) >= 0.90
    # An uninformative verifier would pass noise at the real rate 0.95. Measured 0 of 1,000 for uniform pixels and for
    # fair coin flips (their Mahalanobis scores' medians are 2.3x and 4x the threshold); at most 2% allowed.
    rng = np.random.default_rng(0)
    for noise in (rng.uniform(size=(1000, 8, 8)), rng.integers(0, 2, size=(1000, 8, 8))):
        assert float(jnp.mean(good(jnp.asarray(noise, jnp.float32), KNOBS))) <= 0.02
    # good_region_mass sets the share of real test digits inside the region: 0.5 -> 150 or (boundary round-off) 149.
    half = dataclasses.replace(digits_model, good_region_mass=0.5)
    assert abs(float(jnp.sum(half.is_good(test, KNOBS))) - 150) <= 1


def test_bad_good_region_mass_is_a_one_line_value_error(data_dir):
    config = tiny_config(data_dir)
    config.curation = {"good_region_mass": 1.5}
    with pytest.raises(ValueError, match="config.curation.good_region_mass") as error:
        base.make_model(config)
    assert "\n" not in str(error.value)


def test_engine_runs_vae_chains_and_a_killed_run_resumes_bit_identically(data_dir, tmp_path):
    # The three XLA compiles (init, chunk, chunk again on resume) are most of this test: few steps, the tiny nets, and
    # the data and classifier of `tiny_model`, so its cached reference() is reused rather than trained again.
    config = tiny_config(data_dir, **{"model.steps_per_generation": 5, "model.latent_dim": 2})
    straight = runner.run(config, str(tmp_path / "straight"))
    assert straight.metrics["frechet_distance"].shape == (2, 3) and not np.isnan(straight.metrics["recall"]).any()
    assert "sample_images" not in straight.metrics  # images are artifacts, not metrics
    # A copy of the workdir as a kill between generation 2's metric rows and its checkpoint leaves it: checkpoint 2
    # gone, metric files one chunk ahead of the newest checkpoint (the resume cuts them back and recomputes the chunk).
    shutil.copytree(tmp_path / "straight", tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "group_000" / "2")
    os.remove(tmp_path / "killed" / "artifacts" / "group_000" / "generation_000002.npz")
    resumed = runner.run(config, str(tmp_path / "killed"))
    assert_resumed(str(tmp_path / "killed"), 1, 2)
    for name in straight.metrics:
        np.testing.assert_array_equal(straight.metrics[name], resumed.metrics[name], err_msg=name)
    assert results.load(str(tmp_path / "killed")).metrics["elbo_real_test"].shape == (2, 3)
    for name in ("sample_images", "decoded_means"):
        for generation in range(3):
            ids, images = artifacts.load(str(tmp_path / "straight"), name, generation)
            assert list(ids) == [0, 1] and images.shape == (2, 3, 8, 8) and 0.0 <= images.min() <= images.max() <= 1
            # The resumed run redrew generation 2 (its artifact was written again): the same images, bit for bit.
            np.testing.assert_array_equal(images, artifacts.load(str(tmp_path / "killed"), name, generation)[1])
        grids = image_grids.write_sample_grids(str(tmp_path / "killed"), name)
        assert [os.path.basename(p) for p in grids] == [f"{name}_group_0.png"]  # one knob group: replace, rho = 0
