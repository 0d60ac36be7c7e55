"""The diffusion family: a variance-preserving diffusion whose denoiser is exact (the weighted training set's, no
network), the truth's own, or a network trained per chain (NETS), sampled by DDPM or DDIM.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models import _toy_data as toy_data
from collapse_jax.models._pool import pool_capacity
from collapse_jax.models.contract import ErrorSwitch, FamilySettings, family_settings
from collapse_jax.models.diffusion import images, metrics, nets, sampling, training, unet
from collapse_jax.models.fields import choice, flag, integer, number, requires

CLOSED_FORM_SCORES = ("exact", "truth")
# config.model.score -> builder(DiffusionModel) -> Net. A network for another data shape registers here (one entry).
NETS: dict[str, Callable[[Any], nets.Net]] = {"mlp": nets.build_mlp, "unet": unet.build_unet}
LEARNED_SCORES = tuple(NETS)
SCORES = CLOSED_FORM_SCORES + LEARNED_SCORES
START_FROM = ("previous", "scratch")
# Per-chain knobs of every denoiser's sampler.
SAMPLER_KNOBS = {"sampling_bias": "model.sampling_bias", "truncation": "model.truncation"}
# Knobs of a learned denoiser's training (per chain; train_steps runs up to the group's largest, masked per chain).
TRAINING_KNOBS = {"train_steps": "model.train_steps", "learning_rate": "model.learning_rate"}
# config.model fields of the learned denoisers (declared once; a rule refuses them with a closed-form score).
LEARNED_FIELDS = {
    "width": integer("learned score: hidden width of the network", low=1, sweepable=True, default=128),
    "depth": integer("learned score: residual blocks of the MLP", low=1, sweepable=True, default=3),
    "train_steps": integer(
        "learned score: AdamW steps per generation (a chain knob)", low=1, sweepable=True, default=1000
    ),
    "learning_rate": number(
        "learned score: AdamW learning rate (a chain knob)", low=0.0, low_open=True, sweepable=True, default=1e-3
    ),
    "batch_size": integer("learned score: pool points per training step (drawn by weight)", low=1, default=256),
    "start_from": choice(
        "learned score: each generation trains from the previous generation's weights or from scratch",
        START_FROM,
        sweepable=True,
        default="previous",
    ),
}
TRUTHS = ("gaussian", "mixture", "ring", "moons") + images.IMAGE_TRUTHS
PLANAR_TRUTHS = ("mixture", "ring", "moons")
CLOSED_FORM_TRUTHS = ("gaussian", "mixture")
# energy_distance compares the first min(M, ENERGY_SAMPLES) samples (i.i.d., so an unbiased subsample) with
# REFERENCE_SIZE truth points drawn once from REFERENCE_SEED: for 1000 fresh truth draws on the 8-mode mixture it is
# -3e-4 +- 1.1e-3 over 64 chains (tests/test_diffusion.py), at M x REFERENCE_SIZE distances per chain-generation.
ENERGY_SAMPLES, REFERENCE_SIZE, REFERENCE_SEED = 1000, 2000, 20240507


def mixture_modes(count: int) -> np.ndarray:
    """The mixture truth's k modes, evenly spaced on the unit circle: mu_j = (cos 2 pi j / k, sin 2 pi j / k)."""
    angle = 2.0 * math.pi * np.arange(count) / count
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiffusionModel:
    """Static settings; params are the stored pool {'points': [capacity, dim], 'weights': [capacity]}, plus for a
    learned score the network's parameters 'net' and the training set's box 'low', 'high' [dim]."""

    # A tuple of any of these compiles one group per value (the data's shape, the network, the sampler's length).
    static_sweep_fields: ClassVar[tuple[str, ...]] = (
        "model.truth",
        "model.score",
        "model.width",
        "model.depth",
        "model.start_from",
        "model.sampling_steps",
    )
    # Error-source switches. A learned denoiser has no exact fit, so its three sources are budgets, on below the
    # largest value the run sweeps (fewer samples per generation, a narrower or shallower net, fewer steps or a lower
    # learning rate); the sampler's own error is a fourth source: fewer sampling steps, or a truncation t0 > 0.
    # The exact vs truth denoisers (statistical error alone) are compared in experiments/configs/diffusion_oracle.py.
    error_source_switches: ClassVar[dict[str, ErrorSwitch]] = {
        "samples_per_generation": ErrorSwitch(source="statistical", budget=True),
        "width": ErrorSwitch(source="expressivity", budget=True),
        "depth": ErrorSwitch(source="expressivity", budget=True),
        "train_steps": ErrorSwitch(source="approximation", budget=True),
        "learning_rate": ErrorSwitch(source="approximation", budget=True),
        "sampling_steps": ErrorSwitch(source="sampler", budget=True),
        "truncation": ErrorSwitch(source="sampler", above=0.0, default=0.0),
    }

    truth: str
    score: str
    schedule: str
    sampler: str
    sampling_steps: int
    final_denoise: bool
    dim: int
    true_std: float
    modes: int
    mode_std: float
    ring_std: float
    moons_noise: float
    capacity: int  # the largest pool any generation of the configured regime hands to fit (static shape)
    real_data_size: int
    candidates: int = 0  # points sampled per generation (samples x curation oversample): sizes the working set
    # Learned denoisers only (score in NETS): the network's size, the training loop's static length and batch.
    width: int = 0
    depth: int = 0
    max_train_steps: int = 0  # the group's largest train_steps (the scan's static length)
    min_train_steps: int = 0  # the group's smallest: equal to the largest, no chain's steps are masked
    batch_size: int = 0
    start_from: str = "previous"
    # Image truths only: the images, the feature classifier and the U-Net's settings (images.ImageTruth).
    image_truth: images.ImageTruth | None = dataclasses.field(default=None, compare=False, hash=False)
    # Generated samples evaluate returns per chain for the report's grids (images.preview_count; 0: none).
    preview_samples: int = 0
    knob_fields: dict = dataclasses.field(
        default_factory=lambda: dict(SAMPLER_KNOBS),
        compare=False,
        hash=False,
    )

    # config.model fields, declared once: the only source of their defaults and checks.
    config_fields = {
        "score": choice(
            "the denoiser: 'exact' (of the weighted training set, no network), 'truth' (the forward-noised truth's "
            "closed form; gaussian and mixture truths) or a network trained per chain ('mlp': residual MLP)",
            SCORES,
            default="exact",
            noun="denoiser",
            sweepable=True,
        ),
        **LEARNED_FIELDS,
        "schedule": choice(
            "alpha_t: 'cosine' (Nichol & Dhariwal) or 'linear' (betas 0.1 ... 20 in t in [0, 1])",
            sampling.SCHEDULES,
            default="cosine",
            noun="schedule",
        ),
        "sampler": choice(
            "'ancestral' (DDPM) or 'ode' (deterministic DDIM, the probability-flow ODE)",
            sampling.SAMPLERS,
            default="ancestral",
        ),
        "sampling_steps": integer(
            "sampler steps from t = 1 to the truncation t0 (uniform in t)", low=1, sweepable=True, default=64
        ),
        "truncation": number(
            "t0: the sampler stops at forward time t0 (a chain knob)",
            low=0.0,
            high=1.0,
            high_open=True,
            sweepable=True,
            default=0.0,
        ),
        "final_denoise": flag("output the denoised mean D(x_t0, t0) instead of x_t0", default=False),
        "sampling_bias": number(
            "lambda: scales the sampler's injected noise (MAD's sampling bias; 1 = the plain sampler; a chain knob)",
            low=0.0,
            sweepable=True,
            default=1.0,
        ),
        "truth": choice("the true distribution", TRUTHS, sweepable=True, default="mixture", noun="truth"),
        "dim": integer("gaussian: dimensions of N(0, true_std^2 I) (the planar truths are 2-D)", low=1, default=2),
        "true_std": number("gaussian: the truth's standard deviation", low=0.0, low_open=True, default=1.0),
        "modes": integer("mixture: number of Gaussian modes on the unit circle", low=1, default=8),
        "mode_std": number("mixture: standard deviation of each mode", low=0.0, low_open=True, default=0.05),
        "ring_std": number("ring: std of the radial noise around radius 1", low=0.0, default=0.05),
        "moons_noise": number("moons: std of the Gaussian noise added to the two moons", low=0.0, default=0.05),
        "real_data_size": integer("real training set at generation 0 (None: M)", low=1, optional=True),
        **images.CONFIG_FIELDS,
    }
    config_rules = (
        requires(
            "score",
            ("truth",),
            "truth",
            CLOSED_FORM_TRUTHS,
            "config.model.truth: score = 'truth' needs a truth with a closed-form denoiser (gaussian or mixture), "
            "got {got}",
        ),
        requires(
            "truth",
            PLANAR_TRUTHS,
            "dim",
            (2,),
            "config.model.dim: the {when} truth is 2-D; leave model.dim unset or 2, got {got}",
        ),
        *images.CONFIG_RULES,
    ) + tuple(
        # A closed-form denoiser trains nothing: a training setting other than its default there is a mistake.
        requires(
            "score",
            CLOSED_FORM_SCORES,
            name,
            (field.default,),
            f"config.model.{name}: a setting of the learned denoisers {list(LEARNED_SCORES)}; with score = {{when}} "
            f"leave it unset, got {{got}}",
        )
        for name, field in LEARNED_FIELDS.items()
    )

    @property
    def metric_names(self) -> tuple[str, ...]:
        """energy_distance and the memorization pair, plus the truth's own: mode metrics (mixture), radius (ring)."""
        own = {"mixture": ("mode_coverage", "high_quality_share"), "ring": ("ring_radius_error",)}
        if self.image_truth is not None:  # the classifier-feature metrics stand in for the pixel energy distance
            return ("train_coverage", "memorized_share") + images.METRIC_NAMES
        return ("energy_distance", "train_coverage", "memorized_share") + own.get(self.truth, ())

    @property
    def artifact_names(self) -> tuple[str, ...]:
        """The first preview_samples samples per generation: images [k, H, W] in [0, 1] or 2-D points [k, 2]."""
        if not self.preview_samples:
            return ()
        return ("sample_images",) if self.image_truth is not None else ("sample_points",)

    def sample_truth(self, key: jax.Array, num_samples: int, knobs: dict) -> jax.Array:
        """Draw from the truth: N(0, s^2 I_d); the mixture (mode ~ Uniform, mu + tau eps); the ring (angle ~ U[0, 2 pi),
        radius 1 + ring_std eps); two moons plus N(0, noise^2 I); an image data set's training images."""
        if self.image_truth is not None:
            return self.image_truth.sample_truth(key, num_samples)
        if self.truth == "gaussian":
            return self.true_std * jax.random.normal(key, (num_samples, self.dim))
        if self.truth == "moons":
            return toy_data.moons(key, num_samples, self.moons_noise)
        first, second = jax.random.split(key)
        if self.truth == "mixture":
            modes = jnp.asarray(mixture_modes(self.modes), jnp.float32)
            labels = jax.random.randint(first, (num_samples,), 0, self.modes)
            return modes[labels] + self.mode_std * jax.random.normal(second, (num_samples, 2))
        angle = jax.random.uniform(first, (num_samples,), maxval=2.0 * math.pi)
        radius = 1.0 + self.ring_std * jax.random.normal(second, (num_samples,))
        return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The chain's original training set: real_data_size draws from the truth (distinct images: images.py)."""
        if self.image_truth is not None:
            return self.image_truth.real_data(key, self.real_data_size)
        return self.sample_truth(key, self.real_data_size, knobs)

    @property
    def learned(self) -> bool:
        """Whether the denoiser is a network trained per chain (score in NETS)."""
        return self.score in NETS

    @property
    def net(self) -> nets.Net:
        """The learned denoiser's network (score in NETS), built from these settings."""
        return NETS[self.score](self)

    @property
    def fit_weighting(self) -> str:
        """contract.FitWeighting: the exact and truth denoisers store the pool with its weights (counts, fractions
        included); a learned denoiser's AdamW batches draw points in proportion to weight (counts in law only)."""
        return "draws" if self.learned else "counts"

    def pool(self, params: dict) -> tuple[jax.Array, jax.Array]:
        """contract.PoolParams: the stored training pool and its weights."""
        return params["points"], params["weights"]

    def working_bytes_per_chain(self, knobs: dict) -> int:
        """One chain's peak float32 bytes beyond state, real data and samples (contract.WorkingBytes), for chain_block
        "auto": the larger of the sampler's step (exact: ~3 copies of the [n, C] posterior; learned: the network's
        activations on n points) and evaluate's ([n, C] and ~9 bytes per [C, C] pair for memorization, the energy
        distance's pairs); a learned score adds its training step (~3 copies of the batch's activations, and params,
        grads and two Adam moments)."""
        n, capacity = max(self.candidates, 1), self.capacity
        memorization = 4 * n * capacity + 9 * capacity * capacity
        if self.image_truth is None:  # energy_distance: the subsample's distances to the reference points
            memorization += 4 * min(n, ENERGY_SAMPLES) * REFERENCE_SIZE
        if not self.learned:
            return max(12 * n * capacity, memorization)
        # Floats per point: the MLP's width x (4 depth + 4); the U-Net's levels halve in size as channels double, so
        # its activations stay within ~32 x dim x width per image.
        per_point = 32 * self.dim * self.width if self.score == "unet" else self.width * (4 * self.depth + 4)
        params = sum(leaf.size for leaf in jax.tree.leaves(jax.eval_shape(self.net.init, jax.random.key(0))))
        training = 3 * 4 * self.batch_size * per_point + 4 * 4 * params
        return training + max(4 * n * per_point, memorization)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """An empty pool (every fit overwrites it; only the structure matters); a learned score adds a fresh network
        (generation 0 trains it) and the training set's box."""
        pool = {"points": jnp.zeros((self.capacity, self.dim)), "weights": jnp.zeros((self.capacity,))}
        if not self.learned:
            return pool
        box = {"low": jnp.zeros((self.dim,)), "high": jnp.zeros((self.dim,))}
        return {**pool, **box, "net": self.net.init(key)}

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """Store the pool (padded to the static capacity; zero-weight slots hold zeros, so their values never matter);
        a learned score then trains its network on it (training.train), from the previous generation's weights or a
        fresh draw (config.model.start_from).

        An empty pool has no denoiser: its weights are NaN, which the engine flags as a failed chain.
        """
        size = data.shape[0]
        if size > self.capacity:
            raise ValueError(
                f"diffusion: a pool of {size} points exceeds the capacity {self.capacity} derived from the config"
            )
        pad = self.capacity - size
        weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)]).astype(jnp.float32)
        points = jnp.concatenate([data, jnp.zeros((pad, self.dim), data.dtype)])
        points = jnp.where(weights[:, None] > 0, points, 0.0)
        weights = jnp.where(jnp.sum(weights) > 0, weights, jnp.nan)
        pool = {"points": points, "weights": weights}
        if not self.learned:
            return pool
        init_key, train_key = jax.random.split(key)
        net = self.net
        # Generation 0's previous is init's fresh network (drawn from the chain's own init key).
        start = net.init(init_key) if self.start_from == "scratch" else previous["net"]
        valid = weights[:, None] > 0
        trained = training.train(
            train_key,
            net,
            start,
            points,
            weights,
            knobs,
            self.schedule,
            self.max_train_steps,
            self.batch_size,
            self.min_train_steps,
        )
        return {
            **pool,
            "low": jnp.min(jnp.where(valid, points, jnp.inf), axis=0),
            "high": jnp.max(jnp.where(valid, points, -jnp.inf), axis=0),
            "net": trained,
        }

    def denoiser(self, params: dict) -> sampling.Denoiser:
        """D(x_t, t) = E[x0 | x_t]: the stored pool's exact posterior mean, the truth's closed form, or the network's
        estimate (training.learned_denoiser)."""
        if self.learned:
            return training.learned_denoiser(self.net, params["net"], params["low"], params["high"])
        if self.score == "exact":
            return lambda x, t, alpha, sigma: sampling.exact_denoise(
                x, alpha, sigma, params["points"], params["weights"]
            )
        if self.truth == "gaussian":
            return lambda x, t, alpha, sigma: sampling.gaussian_truth_denoise(x, alpha, sigma, self.true_std)
        modes = jnp.asarray(mixture_modes(self.modes), jnp.float32)
        return lambda x, t, alpha, sigma: sampling.mixture_truth_denoise(x, alpha, sigma, modes, self.mode_std)

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> jax.Array:
        """Run the configured sampler from x_1 = lambda eps down to t0 (sampling.run_sampler); images are clipped to
        the pixel range [-1, 1], as DDPM's sampler does before saving them."""
        samples = sampling.run_sampler(
            key,
            self.denoiser(params),
            (num_samples, self.dim),
            self.schedule,
            self.sampler,
            self.sampling_steps,
            knobs["truncation"],
            knobs["sampling_bias"],
            self.final_denoise,
        )
        return samples if self.image_truth is None else jnp.clip(samples, -1.0, 1.0)

    def reference(self) -> dict:
        """REFERENCE_SIZE truth points from a fixed key independent of all chain streams, and their E|Y - Y'|; an
        image truth's classifier and real test features (images.ImageTruth.reference)."""
        if self.image_truth is not None:
            return self.image_truth.reference()
        points = np.asarray(self.sample_truth(jax.random.key(REFERENCE_SEED), REFERENCE_SIZE, {}), np.float32)
        return {"points": jnp.asarray(points), "pair_distance": jnp.float32(metrics.mean_pair_distance(points))}

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict:
        """energy_distance to the truth (image truths: the classifier-feature metrics), the memorization pair against
        the stored pool, the truth's own metrics, and the preview artifact."""
        values = {}
        if self.preview_samples:
            preview = samples[: self.preview_samples]
            if self.image_truth is not None:
                values["sample_images"] = self.image_truth.as_images(preview)
            else:
                values["sample_points"] = preview
        values["train_coverage"], values["memorized_share"] = metrics.memorization(
            samples, params["points"], params["weights"]
        )
        if self.image_truth is not None:
            return {**values, **self.image_truth.evaluate(samples, reference)}
        subsample = samples[: min(samples.shape[0], ENERGY_SAMPLES)]
        values["energy_distance"] = metrics.energy_distance(subsample, reference["points"], reference["pair_distance"])
        if self.truth == "mixture":
            modes = jnp.asarray(mixture_modes(self.modes), jnp.float32)
            values["mode_coverage"], values["high_quality_share"] = metrics.mode_metrics(samples, modes, self.mode_std)
        if self.truth == "ring":
            values["ring_radius_error"] = metrics.ring_radius_error(samples)
        return values


def make_model(config, settings: FamilySettings | None = None) -> DiffusionModel:
    """Build the diffusion family from its resolved config (base.make_model: defaults in, fields and rules checked)."""
    model = config.model
    real_data_size = model.real_data_size or config.samples_per_generation
    settings = family_settings(config) if settings is None else settings
    learned = model.score in NETS
    image_truth = None
    if model.truth in images.IMAGE_TRUTHS:
        image_truth = images.load(model, config.samples_per_generation, model.real_data_size)
    dim = image_truth.dim if image_truth is not None else int(model.dim)
    return DiffusionModel(
        truth=model.truth,
        score=model.score,
        schedule=model.schedule,
        sampler=model.sampler,
        sampling_steps=int(model.sampling_steps),
        final_denoise=bool(model.final_denoise),
        dim=dim,
        true_std=float(model.true_std),
        modes=int(model.modes),
        mode_std=float(model.mode_std),
        ring_std=float(model.ring_std),
        moons_noise=float(model.moons_noise),
        capacity=pool_capacity(config, real_data_size, settings.num_generations),
        real_data_size=real_data_size,
        candidates=config.samples_per_generation * int((config.get("curation") or {}).get("oversample", 1) or 1),
        **(_learned_settings(model) if learned else {}),
        knob_fields={**SAMPLER_KNOBS, **(TRAINING_KNOBS if learned else {})},
        image_truth=image_truth,
        preview_samples=images.preview_count(model, model.truth, dim, config.samples_per_generation),
    )


def _learned_settings(model) -> dict:
    """The learned denoiser's static settings: network size, the scan's length (the group's largest train_steps) and
    whether any chain stops short of it (its smallest)."""
    return dict(
        width=int(model.width),
        depth=int(model.depth),
        max_train_steps=int(np.max(model.train_steps)),
        min_train_steps=int(np.min(model.train_steps)),
        batch_size=int(model.batch_size),
        start_from=model.start_from,
    )
