"""Labelled two-Gaussian mixture and a centroid linear classifier that relabels real-looking inputs, for the verifier
point of Feng et al. (2024, "Beyond Model Collapse: Scaling Up with Synthesized Data Requires Verification").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from collapse_jax.models.contract import FamilySettings, Knobs, PyTree
from collapse_jax.models.fields import choice, integer, number

# Who labels the synthetic inputs. current_model: y = sign(w_g . x) of the chain's latest fit, flipped with
# probability p (self-labelling, compounding over generations). noisy_truth: the true class flipped with probability
# p, independently of x (Feng et al.'s theorem setting: an external generator with error rate p).
LABELLERS = ("current_model", "noisy_truth")


def verified_error_rate(error_rate: Any, keep_good: Any, keep_bad: Any) -> Any:
    """Feng et al.'s label-error rate after verification: p' = p psi / (p psi + (1 - p) phi)."""
    return error_rate * keep_bad / (error_rate * keep_bad + (1 - error_rate) * keep_good)


def breakdown_error_rate(keep_good: Any, keep_bad: Any) -> Any:
    """Feng et al.'s breakdown point p* = 1 / (1 + psi / phi): p' < 1/2 iff p < p*."""
    return 1 / (1 + keep_bad / keep_good)


def expected_verified_refit(margin: Any, signal: float, flip: Any, keep_good: Any, keep_bad: Any, labeller: str):
    """E[w' . mu] / |mu|^2 for the centroid w' of verified synthetic data labelled by a model of margin a = w.mu/|w|.

    Truth y = +-1, x = y mu + z. current_model labels y' = sign(w.x) flipped w.p. p, so the label-error rate is
    q = eps + p (1 - 2 eps), eps = Phi(-a); the verifier keeps y' = y w.p. phi, else psi. Then exactly
    E[y' x | kept] = (1 - 2 q') mu + c u,  q' = verified_error_rate(q), c = (1 - 2p)(phi + psi) pdf(a) / E[keep],
    with u = w/|w| and E[keep] = (1 - q) phi + q psi (from E[z 1{u.z > -a}] = pdf(a) u). noisy_truth: q = p, c = 0.
    Kept points are i.i.d. given which are kept, so their centroid is unbiased for this (no ratio bias).
    """
    if labeller == "noisy_truth":
        return 1 - 2 * verified_error_rate(flip, keep_good, keep_bad)
    model_error = ndtr(-margin)
    error_rate = model_error + flip * (1 - 2 * model_error)
    kept = (1 - error_rate) * keep_good + error_rate * keep_bad
    density = jnp.exp(-0.5 * margin**2) / math.sqrt(2 * math.pi)
    boundary = (1 - 2 * flip) * (keep_good + keep_bad) * density / kept
    return 1 - 2 * verified_error_rate(error_rate, keep_good, keep_bad) + boundary * margin / signal**2


@dataclasses.dataclass(frozen=True, kw_only=True)
class GaussianClassifierModel:
    """y ~ uniform{-1, +1}, x = y mu + N(0, I_d), mu = (signal, 0, ..., 0); data {"x": [n, d], "y", "y_true": [n]}.

    Params {"weights": [d]}: the centroid w = sum_i v_i y_i x_i / sum_i v_i (v = sample weights), i.e. the MLE of mu
    under x | y ~ N(y mu, I); for balanced classes w = (m_+ - m_-)/2, half the nearest-centroid difference. It
    classifies by sign(w . x) (no intercept: the truth is symmetric). y_true is the class that generated x.
    """

    # Config fields whose tuple values compile one group each.
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.labeller",)

    dim: int
    signal: float
    labeller: str
    real_data_size: int

    knob_fields: ClassVar[dict[str, str]] = {"generator_error": "model.generator_error"}
    metric_names: ClassVar[tuple[str, ...]] = (
        "test_accuracy",
        "cosine_to_truth",
        "projection_on_truth",
        "label_error_rate",
        "weight_norm",
    )

    # config.model fields, declared once: the only source of their defaults and checks.
    config_fields: ClassVar[dict] = {
        "dim": integer("d: feature dimension", low=1, default=10),
        "signal": number("|mu|: distance of each class mean from 0", low=0.0, low_open=True, default=1.0),
        "labeller": choice(
            "who labels synthetic x", LABELLERS, sweepable=True, noun="labeller", default="current_model"
        ),
        "generator_error": number(
            "p: label flip probability of the generator", low=0.0, high=1.0, sweepable=True, default=0.0
        ),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
    }

    def true_mean(self) -> jax.Array:
        """mu = (signal, 0, ..., 0)."""
        return jnp.zeros((self.dim,), jnp.float32).at[0].set(self.signal)

    # contract.RefitTolerance: sample flips each label w.p. generator_error by design, so a refit on its samples shrinks
    # the centroid by 1 - 2p rather than returning the fit; the conformance kit skips sample-then-refit.
    refit_tolerance = None

    @property
    def sample_reads_params(self) -> bool:
        """contract.SampleReadsParams: the noisy-truth labeller relabels truth draws without the fit."""
        return self.labeller == "current_model"

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: Knobs) -> PyTree:
        """Correctly labelled draws from the truth: y ~ uniform{-1, +1}, x = y mu + z."""
        label_key, noise_key = jax.random.split(key)
        y = jnp.where(jax.random.bernoulli(label_key, 0.5, (num_samples,)), 1.0, -1.0)
        x = y[:, None] * self.true_mean() + jax.random.normal(noise_key, (num_samples, self.dim))
        return {"x": x, "y": y, "y_true": y}

    def real_data(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """The chain's original training set: real_data_size correctly labelled truth draws."""
        return self.sample_truth(key, self.real_data_size, knobs)

    def init(self, key: jax.Array, knobs: Knobs) -> PyTree:
        """Zero weights (only the structure matters: every fit overwrites them)."""
        del key, knobs
        return {"weights": jnp.zeros((self.dim,), jnp.float32)}

    def statistics(self, data: PyTree, weights: jax.Array) -> PyTree:
        """sum_i v_i y_i x_i [d] and sum_i v_i: the centroid is their ratio, so accumulate keeps O(d) memory."""
        weights = weights.astype(jnp.float32)
        return {"moment": (weights * data["y"]) @ data["x"], "count": jnp.sum(weights)}

    def merge_statistics(self, a: PyTree, b: PyTree) -> PyTree:
        """Statistics of the union of two data sets (both are sums over points)."""
        return jax.tree.map(jnp.add, a, b)

    def fit_statistics(self, key: jax.Array, statistics: PyTree, knobs: Knobs, previous: PyTree) -> PyTree:
        """w = sum v y x / sum v (zero when nothing is kept: a chance-level classifier)."""
        del key, knobs, previous
        return {"weights": statistics["moment"] / jnp.maximum(statistics["count"], 1e-12)}

    def fit(self, key: jax.Array, data: PyTree, weights: jax.Array, knobs: Knobs, previous: PyTree) -> PyTree:
        """The weighted centroid of the pool (same as `fit_statistics` on its statistics)."""
        return self.fit_statistics(key, self.statistics(data, weights), knobs, previous)

    def sample(self, key: jax.Array, params: PyTree, num_samples: int, knobs: Knobs) -> PyTree:
        """Truth inputs relabelled by the generator, each label flipped independently w.p. p = generator_error."""
        truth_key, flip_key = jax.random.split(key)
        data = self.sample_truth(truth_key, num_samples, knobs)
        if self.labeller == "current_model":
            clean = jnp.where(data["x"] @ params["weights"] >= 0, 1.0, -1.0)
        else:
            clean = data["y_true"]
        flipped = jax.random.bernoulli(flip_key, knobs["generator_error"], (num_samples,))
        return {**data, "y": jnp.where(flipped, -clean, clean)}

    def is_good(self, data: PyTree, knobs: Knobs) -> jax.Array:
        """Feng et al.'s oracle verifier: the label is the class that generated x."""
        del knobs
        return data["y"] == data["y_true"]

    def log_likelihood(self, params: PyTree, data: PyTree, knobs: Knobs) -> jax.Array:
        """log p(y | x, w) = -log(1 + exp(-2 y w.x)): the class posterior of the fitted mixture x | y ~ N(y w, I).

        Conditional on x because the inputs come from the truth: only the label carries the generator's errors.
        """
        del knobs
        return -jax.nn.softplus(-2.0 * data["y"] * (data["x"] @ params["weights"]))

    def reference(self) -> PyTree:
        """The truth's class mean mu: every metric is closed form, so no test set is needed."""
        return {"mean": self.true_mean()}

    def evaluate(self, params: PyTree, samples: PyTree, reference: PyTree, knobs: Knobs) -> dict[str, jax.Array]:
        """test_accuracy = P(sign(w.x) = y) = Phi(w.mu / |w|) exactly (w.x | y ~ N(y w.mu, |w|^2)); 1/2 at w = 0."""
        del knobs
        weights, mean = params["weights"], reference["mean"]
        norm = jnp.linalg.norm(weights)
        margin = jnp.where(norm > 0, weights @ mean / jnp.maximum(norm, 1e-30), 0.0)
        return {
            "test_accuracy": ndtr(margin),
            "cosine_to_truth": margin / self.signal,
            "projection_on_truth": weights @ mean / self.signal**2,
            "label_error_rate": jnp.mean((samples["y"] != samples["y_true"]).astype(jnp.float32)),
            "weight_norm": norm,
        }


def make_model(config: Any, settings: FamilySettings | None = None) -> GaussianClassifierModel:
    """Build the model from its resolved config (base.make_model: defaults in, fields checked)."""
    del settings  # no verifier, no horizon-sized buffers: the engine settings are unused
    model = config.model
    return GaussianClassifierModel(
        dim=int(model.dim),
        signal=float(model.signal),
        labeller=model.labeller,
        real_data_size=int(model.real_data_size or config.samples_per_generation),
    )
