"""Class preference on the VAE (Ferbach et al. 2024 with the feature classifier as the rater): the reward's values,
the preferred class gaining share under curation, the metric, and one-line errors.

The Bradley-Terry selection law itself (keep i with probability exp(r_i) / sum_j exp(r_j)) is tested once, on fixed
rewards, in tests/test_curation_ops.py; here the VAE's rewards are checked against the classifier called directly.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_vae import tiny_config

from collapse_jax.core import curation
from collapse_jax.host import runner
from collapse_jax.models import base, contract

PREFERENCE = {
    "curation.name": "preference",
    "curation.candidates": 4,
    "curation.oversample": 4,
    "curation.reward": "class_preference",
    "curation.reward_scale": 8.0,
    "curation.preferred_class": 0,
}
# A classifier that separates the 8x8 digits (3 epochs of the other VAE tests leave it near uniform: log p ~ -2.3 for
# every class, so no reward would move anything); 20 epochs on 300 digits is still a fraction of a second.
CLASSIFIER = {"model.classifier_epochs": 20}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def preference_model(data_dir):
    return base.make_model(tiny_config(data_dir, **CLASSIFIER, **PREFERENCE))


def test_vae_offers_class_preference_through_the_contract(preference_model):
    assert contract.supports(preference_model, contract.PreferenceRewards)
    assert curation.preference_rewards(preference_model) == ("class_preference",)
    assert "preferred_class_share" in preference_model.metric_names


def test_class_preference_reward_is_beta_times_the_classifiers_log_softmax_of_the_class(preference_model):
    """r(x) = beta log softmax(f(x))_c with f the reference classifier applied directly (no chunks), for two classes
    and two betas (knobs: one compile), on real test digits and images of the untrained VAE (one padded chunk)."""
    model = preference_model
    classifier = model.reference()["classifier"]
    real = jnp.asarray(model.test_images[:50], jnp.float32) / 255.0
    untrained = model.sample(jax.random.key(0), model.init(jax.random.key(1), {}), 30, {"sampling_temperature": 1.0})
    images = jnp.concatenate([real, untrained])
    log_probabilities = np.asarray(jax.nn.log_softmax(model.classifier.apply(classifier, images)[0]), np.float64)
    reward = jax.jit(lambda x, k: curation.reward("class_preference", model, x, k))
    for beta, preferred in ((8.0, 0), (0.5, 7)):
        got = reward(images, {"reward_scale": jnp.float32(beta), "preferred_class": jnp.float32(preferred)})
        # float32 log-softmax of 10 logits: ~1e-6 relative; times beta = 8.
        np.testing.assert_allclose(np.asarray(got), beta * log_probabilities[:, preferred], rtol=1e-5, atol=1e-5)


def test_preferred_class_share_is_the_share_of_images_the_classifier_calls_c(preference_model):
    model = preference_model
    reference = model.reference()
    images = jnp.asarray(model.test_images[:100], jnp.float32) / 255.0
    params = model.init(jax.random.key(0), {})
    knobs = {"kl_weight": 1.0, "learning_rate": 2e-3, "sampling_temperature": 1.0, "preferred_class": jnp.float32(3)}
    metrics = jax.jit(model.evaluate)(params, images, reference, knobs)
    predicted = np.argmax(np.asarray(model.classifier.apply(reference["classifier"], images)[0]), axis=-1)
    assert float(metrics["preferred_class_share"]) == pytest.approx(np.mean(predicted == 3), abs=1e-7)
    plain = dataclasses.replace(model, class_preference=False)  # without a class preference: no such metric
    assert "preferred_class_share" not in plain.metric_names


def test_class_preference_raises_the_preferred_class_share_over_uncurated_chains(data_dir):
    """beta = 8, K = 4 vs beta = 0 (a uniform pick among the 4: uncurated) on the same 4 seeds (the same generation-0
    models, bit for bit), two generations. The tiny VAE here trains 200 steps and passes binarized draws on: its
    generation-0 images spread over the digits (7 holds 0.10-0.18 of them), where the 60-step decoded-mean default of
    the other VAE tests draws one blurred class. Keeping the most surely-7 of 4 candidates gives each generation's
    pool more sevens than the model drew, and the gain compounds (measured: +0.06 at generation 1, +0.12 at 2).
    Tolerance: a chain's share is a mean over 300 images, binomial SD <= sqrt(0.25 / 300) = 0.029 for shares below
    0.5; the paired difference has SD <= 0.041 and its mean over 4 seeds <= 0.02, so the mean gain must reach 0.06
    (3 SE above no effect), and each seed's curated chain must beat its uncurated twin."""
    overrides = {
        **CLASSIFIER,
        **PREFERENCE,
        "curation.reward_scale": (0.0, 8.0),
        "curation.preferred_class": 7,
        "model.steps_per_generation": 200,
        "model.sample_mode": "bernoulli",
        "seeds": 4,
        "chain_block": 8,
    }
    results = runner.simulate(tiny_config(data_dir, num_generations=2, **overrides))
    beta = np.asarray(results.knobs["reward_scale"])
    share = results.metrics["preferred_class_share"]
    uncurated, curated = share[beta == 0.0], share[beta == 8.0]
    np.testing.assert_array_equal(uncurated[:, 0], curated[:, 0])  # generation 0 does not see the knob
    assert np.all(curated[:, 2] > uncurated[:, 2]), share
    assert np.mean(curated[:, 2] - uncurated[:, 2]) >= 0.06, share
    # The kept images' mean reward: 0 exactly at beta = 0, 8 mean log p(7 | kept) < 0 at beta = 8.
    np.testing.assert_array_equal(results.metrics["mean_reward"][beta == 0.0, 1:], 0.0)
    assert np.all(results.metrics["mean_reward"][beta == 8.0, 1:] < 0.0)


@pytest.mark.parametrize(
    "model, fields, message",
    [
        (
            "vae",
            {"curation.reward": "linear"},
            r"config\.curation\.reward: 'linear' .*'vae'; allowed: class_preference$",
        ),
        ("vae", {"curation.preferred_class": None}, r"config\.curation\.preferred_class: required by curation\.reward"),
        ("vae", {"curation.preferred_class": 10}, r"config\.curation\.preferred_class: 10 not allowed; .*\[0, 10\)"),
        ("vae", {"curation.preferred_class": (0, -1)}, r"config\.curation\.preferred_class: must be an integer >= 0"),
        (
            "gaussian",
            {"curation.candidates": 4},
            r"config\.curation\.reward: 'class_preference' .*'gaussian'; allowed: linear, quadratic$",
        ),
    ],
)
def test_a_reward_the_family_does_not_offer_is_a_one_line_error(data_dir, gaussian_config, model, fields, message):
    if model == "vae":
        config = tiny_config(data_dir, **{**PREFERENCE, **fields})
    else:
        config = runner.as_config({**PREFERENCE, **fields}, gaussian_config)
    with pytest.raises(ValueError, match=message) as error:
        runner.simulate(config)
    assert "\n" not in str(error.value)


def test_preference_on_a_family_without_any_reward_names_curation_name(data_dir):
    from experiments.configs import poisson

    config = runner.as_config({**PREFERENCE, "curation.reward": "linear", "seeds": 1}, poisson.get_config())
    with pytest.raises(ValueError, match=r"config\.curation\.name: 'preference' needs a model with `true_mean`"):
        runner.simulate(config)
