"""Tests of the labelled Gaussian-mixture classifier: centroid parity, the exact accuracy, the generator's label errors,
and Feng et al.'s verified-refit law E[w'.mu]/|mu|^2 = 1 - 2p' (with its exact correction for self-labelling).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.neighbors import NearestCentroid

from collapse_jax.host import sweep
from collapse_jax.host.runner import as_config, simulate
from collapse_jax.models import base, gaussian_classifier
from experiments.configs import mitigation_verifier


def model_config(**overrides) -> ml_collections.ConfigDict:
    """The shipped verifier config with dotted-path overrides (one labeller: make_model builds one group)."""
    return as_config({"model.labeller": "current_model", **overrides}, mitigation_verifier.get_config())


def make(**overrides) -> gaussian_classifier.GaussianClassifierModel:
    return base.make_model(model_config(**overrides))


def knobs(generator_error: float = 0.0) -> dict:
    return {"seed": jnp.int32(0), "real_fraction": 0.0, "generator_error": jnp.float32(generator_error)}


def test_fit_is_the_weighted_centroid_and_half_the_nearest_centroid_difference():
    """w = sum v y x / sum v (numpy); with balanced classes 2w = m_+ - m_- of sklearn's NearestCentroid."""
    model = make(**{"model.dim": 3})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = np.repeat([1.0, -1.0], 20).astype(np.float32)
    data = {"x": jnp.asarray(x), "y": jnp.asarray(y), "y_true": jnp.asarray(y)}
    weights = (rng.random(40) < 0.7).astype(np.float32)
    params = model.fit(None, data, jnp.asarray(weights), knobs(), model.init(None, {}))
    expected = np.average(y[:, None] * x, weights=weights, axis=0)
    np.testing.assert_allclose(params["weights"], expected, rtol=1e-5, atol=1e-6)
    balanced = model.fit(None, data, jnp.ones(40), knobs(), model.init(None, {}))
    centroids = NearestCentroid().fit(x, y).centroids_  # rows in sorted class order: -1, +1
    np.testing.assert_allclose(2 * balanced["weights"], centroids[1] - centroids[0], rtol=1e-5, atol=1e-6)
    # Sufficient statistics: merging two halves then fitting equals fitting the whole pool (accumulate's O(d) memory).
    halves = [jax.tree.map(lambda leaf, part=part: leaf[part], data) for part in (slice(0, 25), slice(25, 40))]
    merged = model.merge_statistics(
        model.statistics(halves[0], jnp.asarray(weights[:25])), model.statistics(halves[1], jnp.asarray(weights[25:]))
    )
    np.testing.assert_allclose(model.fit_statistics(None, merged, knobs(), None)["weights"], expected, rtol=1e-5)


def test_test_accuracy_closed_form_matches_a_direct_monte_carlo():
    """P(sign(w.x) = y) = Phi(w.mu/|w|) for x = y mu + N(0, I), against 4e5 labelled test draws."""
    model = make(**{"model.dim": 4, "model.signal": 1.0})
    rng = np.random.default_rng(1)
    for weights in (np.asarray([0.8, 0.5, -0.3, 0.1]), np.asarray([-0.2, 1.0, 0.0, 0.4])):
        metrics = model.evaluate(
            {"weights": jnp.asarray(weights, jnp.float32)},
            model.sample_truth(jax.random.key(0), 8, knobs()),
            model.reference(),
            knobs(),
        )
        y = rng.choice([-1.0, 1.0], size=400_000)
        x = y[:, None] * np.asarray(model.true_mean()) + rng.standard_normal((400_000, 4))
        measured = np.mean(np.where(x @ weights >= 0, 1.0, -1.0) == y)
        # Binomial standard error of 4e5 draws is at most 7.9e-4; 5 of them.
        assert abs(float(metrics["test_accuracy"]) - measured) <= 5 * math.sqrt(0.25 / 400_000)
        cosine = weights[0] / np.linalg.norm(weights)
        np.testing.assert_allclose(metrics["cosine_to_truth"], cosine, rtol=1e-5)
        np.testing.assert_allclose(metrics["test_accuracy"], norm.cdf(cosine * 1.0), rtol=1e-5)


def test_is_good_and_label_error_rate_are_exact_on_hand_made_input():
    """Feng's oracle verifier: good iff the label is the class that generated x; label_error_rate counts the rest."""
    model = make(**{"model.dim": 2})
    data = {
        "x": jnp.zeros((5, 2)),
        "y": jnp.asarray([1.0, -1.0, 1.0, -1.0, 1.0]),
        "y_true": jnp.asarray([1.0, -1.0, -1.0, 1.0, 1.0]),
    }
    np.testing.assert_array_equal(model.is_good(data, knobs()), [True, True, False, False, True])
    metrics = model.evaluate({"weights": jnp.asarray([1.0, 0.0])}, data, model.reference(), knobs())
    assert float(metrics["label_error_rate"]) == pytest.approx(0.4)


def test_log_likelihood_is_the_class_posterior_of_the_fitted_mixture():
    """log p(y|x,w) = log N(x; y w, I) - log(N(x; w, I) + N(x; -w, I)) (Bayes' rule, equal priors), against numpy."""
    model = make(**{"model.dim": 3})
    rng = np.random.default_rng(2)
    weights = np.asarray([0.7, -0.2, 0.4])
    x, y = rng.normal(size=(6, 3)), rng.choice([-1.0, 1.0], size=6)
    log_density = {s: -0.5 * np.sum((x - s * weights) ** 2, axis=1) for s in (1.0, -1.0)}
    expected = np.where(y > 0, log_density[1.0], log_density[-1.0]) - np.logaddexp(log_density[1.0], log_density[-1.0])
    data = {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(y, jnp.float32), "y_true": jnp.asarray(y, jnp.float32)}
    scores = model.log_likelihood({"weights": jnp.asarray(weights, jnp.float32)}, data, knobs())
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_self_labelled_samples_have_error_rate_eps_plus_p_times_one_minus_two_eps():
    """current_model labels sign(w.x) flipped w.p. p: P(y != y_true) = eps + p(1 - 2 eps), eps = Phi(-w.mu/|w|)."""
    model = make(**{"model.dim": 3, "model.signal": 1.0})
    weights = jnp.asarray([1.0, 0.8, 0.0])  # margin 1/sqrt(1.64): eps = 0.2175
    eps = norm.cdf(-1.0 / math.sqrt(1.64))
    for flip in (0.0, 0.3, 0.8):
        samples = model.sample(jax.random.key(3), {"weights": weights}, 200_000, knobs(flip))
        rate = float(jnp.mean(samples["y"] != samples["y_true"]))
        expected = eps + flip * (1 - 2 * eps)
        # Binomial standard error sqrt(q(1-q)/n) <= 1.1e-3; 5 of them.
        assert abs(rate - expected) <= 5 * math.sqrt(expected * (1 - expected) / 200_000), flip
        np.testing.assert_array_equal(
            samples["x"], model.sample_truth(jax.random.split(jax.random.key(3))[0], 200_000, knobs())["x"]
        )


CASES = ((0.2, 1.0), (0.6, 0.3), (0.85, 0.1), (0.9, 0.3))  # (p, psi) with phi = 1; p* = 0.5, 0.769, 0.909, 0.769


def verified_projections(model, flips: np.ndarray, keep_bads: np.ndarray, size: int):
    """Per chain: fit real data (w0), label `size` candidates, keep them as Feng's verifier would, refit (w1).

    Returns (w1.mu/|mu|^2, margin of w0) per chain. The verifier is written out here (keep w.p. phi = 1 if good, psi
    if bad), independently of collapse_jax.core.curation, so this checks the model alone. One compile serves all cases.
    """

    def chain(key, flip, keep_bad):
        real_key, sample_key, keep_key = jax.random.split(key, 3)
        ones = jnp.ones(size)
        first = model.fit(None, model.sample_truth(real_key, size, knobs()), ones, knobs(), None)
        candidates = model.sample(sample_key, first, size, knobs(flip))
        keep_rate = jnp.where(model.is_good(candidates, knobs()), 1.0, keep_bad)
        kept = (jax.random.uniform(keep_key, (size,)) < keep_rate).astype(jnp.float32)
        second = model.fit(None, candidates, kept, knobs(flip), first)
        mean = model.true_mean()
        return second["weights"] @ mean / model.signal**2, first["weights"] @ mean / jnp.linalg.norm(first["weights"])

    keys = jax.random.split(jax.random.key(4), len(flips))
    projection, margin = jax.jit(jax.vmap(chain))(keys, jnp.asarray(flips), jnp.asarray(keep_bads))
    return np.asarray(projection, np.float64), np.asarray(margin, np.float64)


@pytest.mark.parametrize("labeller", ["noisy_truth", "current_model"])
def test_verified_refit_projection_obeys_feng_closed_form(labeller):
    """E[w'.mu]/|mu|^2 = 1 - 2p' (noisy_truth, Feng et al.) and 1 - 2q' + c a/|mu|^2 (current_model, exact).

    Conditional on which candidates are kept they are i.i.d., so the refit centroid is unbiased for the closed form
    given w0: the per-chain residual has mean exactly zero, and 4 standard errors of 4096 chains bound its mean.
    """
    model = make(**{"model.dim": 5, "model.signal": 1.0, "model.labeller": labeller})
    chains = 4096
    flips, keep_bads = (np.repeat(np.asarray(column, np.float32), chains) for column in zip(*CASES))
    projections, margins = verified_projections(model, flips, keep_bads, size=200)
    for index, (flip, keep_bad) in enumerate(CASES):
        projection, margin = (a[index * chains : (index + 1) * chains] for a in (projections, margins))
        expected = np.asarray(
            gaussian_classifier.expected_verified_refit(margin, 1.0, flip, 1.0, keep_bad, labeller), np.float64
        )
        residual = projection - expected
        assert abs(residual.mean()) <= 4 * residual.std() / math.sqrt(chains), (flip, keep_bad)
        # The refit is aligned with the truth iff its expected projection is positive; checked where that is more
        # than 4 standard errors from 0 (self-labelling at p = 0.85, psi = 0.1 sits at its breakdown: 0.008).
        if abs(expected.mean()) > 4 * projection.std() / math.sqrt(chains):
            assert (expected.mean() > 0) == (projection.mean() > 0)
        if labeller == "noisy_truth":
            feng = 1 - 2 * gaussian_classifier.verified_error_rate(flip, 1.0, keep_bad)
            np.testing.assert_allclose(expected, feng, rtol=1e-6)
            # Feng et al.: aligned iff p < p* = 1/(1 + psi/phi) (only p = 0.9 with psi = 0.3 is past its p*).
            assert (flip < gaussian_classifier.breakdown_error_rate(1.0, keep_bad)) == (projection.mean() > 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model.dim", 0),
        ("model.signal", 0.0),
        ("model.labeller", "teacher"),
        ("model.generator_error", (0.1, 1.5)),
        ("model.real_data_size", -3),
    ],
)
def test_bad_config_raises_one_line_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"config.{field}") as error:
        sweep.expand(model_config(**{field: value}))
    assert "\n" not in str(error.value)


def test_engine_verifier_keeps_bad_labels_at_rate_p_prime_and_breaks_down_past_p_star():
    """curation.name = "verifier" in the engine, psi = 0.3 (p* = 0.769), p = 0.3 and 0.9, two generations.

    Generation 1 curates the generation-0 model's candidates. With phi = 1 every good label is kept, so a chain's bad
    kept labels are M (kept_fraction - (1 - L0)) with L0 its candidates' label_error_rate; pooled over chains their
    share among the kept is Feng's p' = verified_error_rate(L0). The refit obeys the closed form given w0, and is
    aligned iff p < p*. Generation 2 shows what self-labelling adds: an anti-aligned model's labels flipped with
    p = 0.9 are mostly right again, so current_model chains realign while noisy_truth chains stay broken.
    """
    seeds, keep_bad = 512, 0.3
    overrides = {
        "model.labeller": ("current_model", "noisy_truth"),
        "model.generator_error": (0.3, 0.9),
        "curation.keep_bad": keep_bad,
        "regime.real_fraction": 0.0,
        "seeds": seeds,
        "num_generations": 2,
        "chunk_generations": 2,
        "make_plots": False,
    }
    results = simulate(as_config(overrides, mitigation_verifier.get_config()))
    metrics, signal = results.metrics, 2.0
    p_star = gaussian_classifier.breakdown_error_rate(1.0, keep_bad)
    for labeller in ("current_model", "noisy_truth"):
        for flip in (0.3, 0.9):
            chosen = (results.knobs["labeller"] == labeller) & np.isclose(results.knobs["generator_error"], flip)
            assert chosen.sum() == seeds and not results.failed[chosen].any()
            candidate_errors = metrics["label_error_rate"][chosen, 0]
            kept = metrics["curation_kept_fraction"][chosen, 1]
            bad_kept = kept - (1 - candidate_errors)
            # Pooled ratio sum(bad)/sum(kept) and its linearized standard error; 4 of them.
            share = bad_kept.sum() / kept.sum()
            share_error = np.sqrt(np.sum((bad_kept - share * kept) ** 2)) / kept.sum()
            p_prime = gaussian_classifier.verified_error_rate(candidate_errors.mean(), 1.0, keep_bad)
            assert abs(share - p_prime) <= 4 * share_error, (labeller, flip, share, p_prime)
            if labeller == "noisy_truth":  # an x-independent generator: its error rate is p itself
                assert abs(candidate_errors.mean() - flip) <= 4 * candidate_errors.std() / math.sqrt(seeds)
            margin = metrics["cosine_to_truth"][chosen, 0] * signal
            expected = gaussian_classifier.expected_verified_refit(margin, signal, flip, 1.0, keep_bad, labeller)
            residual = metrics["projection_on_truth"][chosen, 1] - np.asarray(expected, np.float64)
            assert abs(residual.mean()) <= 4 * residual.std() / math.sqrt(seeds), (labeller, flip)
            accuracy = metrics["test_accuracy"][chosen]
            realigned = labeller == "current_model" or flip < p_star
            for generation, aligned in ((1, flip < p_star), (2, realigned)):
                # p = 0.3 and 0.9 sit far from p* = 0.769: the chains' mean accuracy is on its side of 1/2 by more
                # than 4 standard errors (single chains can cross: a projection of -0.46 with sd ~0.12 at ~74 kept).
                gap = accuracy[:, generation].mean() - 0.5
                assert (gap > 0) == aligned and abs(gap) > 4 * accuracy[:, generation].std() / math.sqrt(seeds)
