"""VAE collapse on real images (Shumailov et al. 2024, "AI models collapse when trained on recursively generated data").

A conv VAE is trained per chain (a generation's epochs in one lax.scan) on the pool; decoded z ~ N(0, I) are the data.
Three sources of error: statistical approximation has no exact off switch (no population fit of a VAE to a decoder
distribution exists); its surrogate is a large M (samples_per_generation) with a fixed step budget. Expressivity:
latent_dim / encoder_channels below the default. Approximation: the training budget (steps_per_generation,
learning_rate, train_from scratch vs previous). experiments/configs/error_sources_vae.py sweeps them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from collapse_jax.data.images import DATASETS
from collapse_jax.models.contract import ErrorSwitch, FamilySettings, family_settings
from collapse_jax.models.fields import Field, at_most, choice, integer, number, text
from collapse_jax.models.vae import config as _vae_config
from collapse_jax.models.vae import image_metrics
from collapse_jax.models.vae import verifier as _vae_verifier
from collapse_jax.models.vae.conv import IMPLEMENTATIONS
from collapse_jax.models.vae.nets import (
    Decoder,
    Encoder,
    FeatureClassifier,
    adam_l2,
    apply_in_chunks,
    classifier_reference,
    epoch_batches,
    negative_elbo,
    negative_elbo_given_noise,
    torch_default_init,
)

# reference() trains a classifier (seconds); the engine builds a model per group and again on resume, so reuse it.
_REFERENCE_CACHE: dict[tuple, dict] = {}


def _where(condition: jax.Array, a: Any, b: Any) -> Any:
    """Pytree select (vmap-safe: both sides are computed, one is kept)."""
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), a, b)


@dataclasses.dataclass(frozen=True, eq=False)
class VAEModel:
    """Static settings and the real images (closed-over constants shared by all chains); methods are pure."""

    # contract.FitWeighting: each SGD step draws its batch with probability proportional to weight.
    fit_weighting = "draws"

    # Tuple values of these fields compile one group each; the knobs sweep inside one compile. latent_dim is the
    # capacity switch of the error-source sweeps (experiments/configs/error_sources_vae.py).
    static_sweep_fields: ClassVar[tuple[str, ...]] = ("model.train_from", "model.sample_mode", "model.latent_dim")
    # Error-source switches by budget (no truth outside the family, no exact fit): the smaller value swept turns the
    # source on (fewer samples per generation, a smaller latent, a lower learning rate).
    error_source_switches: ClassVar[dict[str, ErrorSwitch]] = {
        "samples_per_generation": ErrorSwitch(source="statistical", budget=True),
        "latent_dim": ErrorSwitch(source="expressivity", budget=True),
        "learning_rate": ErrorSwitch(source="approximation", budget=True),
    }

    encoder: Encoder
    decoder: Decoder
    classifier: FeatureClassifier
    train_images: np.ndarray  # uint8 [N, H, W]
    train_labels: np.ndarray  # classifier training only
    test_images: np.ndarray  # uint8 [N_test, H, W]: elbo_real_test and the real half of every sample metric
    test_labels: np.ndarray  # the classifier's reported test accuracy
    epochs: int
    steps_per_generation: int | None  # None: `epochs` full passes over the valid pool; int: fixed-compute minibatches
    batch_size: int
    weight_decay: float
    train_from: str
    sample_mode: str
    metric_num_samples: int | None
    preview_images: int  # images per artifact (`sample_images`, `decoded_means`) evaluate returns (0: none)
    precision_recall_size: int
    precision_recall_k: int
    classifier_epochs: int
    classifier_seed: int
    chunk_size: int
    good_region_mass: float  # config.curation.good_region_mass: the share of real test images `is_good` passes
    # config.curation.reward = "class_preference" under preference curation: evaluate adds preferred_class_share.
    class_preference: bool = False
    # Per-chain dynamic knobs (list values in the config sweep inside one compile).
    knob_fields = {
        "kl_weight": "model.kl_weight",
        "learning_rate": "model.learning_rate",
        "sampling_temperature": "model.sampling_temperature",
    }
    # curation.reward names this family offers (contract.PreferenceRewards) -> the curation knobs each reads.
    preference_rewards: ClassVar[dict[str, tuple[str, ...]]] = {"class_preference": ("preferred_class",)}
    _metric_names = (
        "latent_std_gen0_encoder",
        "frechet_distance",
        "precision",
        "recall",
        "class_histogram_entropy",
        "elbo_real_test",
    )

    # config.model fields, declared once: the only source of their defaults and checks (config_schema.validate).
    config_fields = {
        "dataset": choice("image data set", DATASETS, noun="dataset"),
        "data_dir": text("prepared tfds data dir (None: the default)", optional=True),
        "source_dir": text("folder of the Fashion-MNIST IDX files (None: Debian's)", optional=True),
        "train_size": integer("first N training images (None: all)", low=1, optional=True),
        "test_size": integer("first N test images (None: all)", low=1, optional=True),
        "encoder_channels": Field("ints", "encoder conv widths (the decoder mirrors them)", low=1),
        "latent_dim": integer("latent dimension (static: one compile per value)", low=1, sweepable=True),
        "epochs": integer("passes over the valid pool per generation", low=1),
        "batch_size": integer("minibatch size", low=1),
        "steps_per_generation": integer("minibatches per generation (None: use epochs)", low=1, optional=True),
        "learning_rate": number("Adam learning rate", low=0.0, low_open=True, sweepable=True),
        "weight_decay": number("L2 weight decay added to the gradient", low=0.0),
        "kl_weight": number("beta in BCE + beta KL", low=0.0, sweepable=True),
        "sampling_temperature": number("tau: decode z ~ N(0, tau^2 I)", low=0.0, sweepable=True),
        "train_from": choice("scratch or previous", _vae_config.TRAIN_FROM, sweepable=True),
        "sample_mode": choice("bernoulli draws or decoded means", _vae_config.SAMPLE_MODES, sweepable=True),
        "metric_num_samples": integer("generated images used by the metrics (None: all M)", low=1, optional=True),
        "preview_images": integer("decoded samples saved per chain per generation (at most M)", low=0, default=0),
        "precision_recall_size": integer("points per side in precision / recall", low=1),
        "precision_recall_k": integer("k of precision / recall (below precision_recall_size)", low=1),
        "classifier_channels": Field("ints", "feature classifier conv widths", low=1),
        "classifier_feature_dim": integer("feature size of the classifier", low=1),
        "classifier_epochs": integer("epochs of the classifier", low=1),
        "classifier_seed": integer("seed of the classifier", low=0),
        "chunk_size": integer("images per chunk when decoding / scoring", low=1),
        "conv_implementation": choice("auto, xla or matmul convolutions", IMPLEMENTATIONS, default="auto"),
    }
    # Field against field: a preview slices the generation's M samples; precision / recall take the k-th neighbour
    # among precision_recall_size points.
    config_rules = (
        at_most(
            "preview_images",
            "/samples_per_generation",
            "config.model.preview_images: {when} not allowed; must be an integer in [0, samples_per_generation = "
            "{got}]",
        ),
        at_most(
            "precision_recall_k",
            "precision_recall_size",
            "config.model.precision_recall_k: must be smaller than config.model.precision_recall_size",
            strict=True,
        ),
    )

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The collapse metrics, plus preferred_class_share when a class preference curates the chains."""
        return self._metric_names + (("preferred_class_share",) if self.class_preference else ())

    @property
    def real_data_size(self) -> int:
        return int(self.train_images.shape[0])

    @property
    def artifact_names(self) -> tuple[str, ...]:
        """Non-scalar outputs of `evaluate` (image grids saved under <workdir>/artifacts); none without previews."""
        return ("sample_images", "decoded_means") if self.preview_images else ()

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    def real_data(self, key: jax.Array, knobs: dict) -> jax.Array:
        """The real training images in [0, 1], [N, H, W]; the same constant for every chain (key unused)."""
        del key, knobs
        return jnp.asarray(self.train_images, jnp.float32) / 255.0

    def _init_networks(self, key: jax.Array) -> dict:
        """Fresh encoder and decoder parameters, torch's default init (shapes from Flax, values in one draw)."""
        images = jnp.zeros((1, *self.image_shape), jnp.float32)
        latents = jnp.zeros((1, self.encoder.latent_dim), jnp.float32)
        shapes = jax.eval_shape(
            lambda k: {"encoder": self.encoder.init(k, images), "decoder": self.decoder.init(k, latents)}, key
        )
        return torch_default_init(key, shapes)

    def init(self, key: jax.Array, knobs: dict) -> dict:
        """Unfitted params; `fitted` = 0 tells the first fit to store its own encoder as the generation-0 encoder."""
        networks = self._init_networks(key)
        return {"networks": networks, "encoder_gen0": networks["encoder"], "fitted": jnp.zeros((), jnp.float32)}

    def _train(self, key: jax.Array, networks: dict, images: jax.Array, weights: jax.Array, knobs: dict) -> dict:
        """`epochs` passes over the valid pool points in minibatches, Adam with L2 decay on the summed loss."""
        optimizer = adam_l2(knobs["learning_rate"], self.weight_decay)

        def step(state, inputs):
            networks, opt_state = state
            index, mask, noise_key = inputs

            def loss(nets):
                # Summed over the batch like the paper's BCE(reduction="sum") + KL; masked points contribute nothing.
                per_image = negative_elbo(
                    self.encoder, self.decoder, nets, images[index], noise_key, knobs["kl_weight"]
                )
                return jnp.sum(mask * per_image)

            updates, new_opt_state = optimizer.update(jax.grad(loss)(networks), opt_state, networks)
            # A batch with no valid point (pool padding) must not move Adam's moments or the weights.
            keep = jnp.sum(mask) > 0
            new_state = (optax.apply_updates(networks, updates), new_opt_state)
            return _where(keep, new_state, state), None

        def epoch(state, epoch_key):
            order_key, noise_key = jax.random.split(epoch_key)
            index, mask = epoch_batches(order_key, weights, self.batch_size)
            state, _ = jax.lax.scan(step, state, (index, mask, jax.random.split(noise_key, index.shape[0])))
            return state, None

        def fixed_step(state, step_key):
            # Uniform draws (with replacement) among valid pool points: compute per generation does not grow with the
            # accumulate pool's static capacity.
            index_key, noise_key = jax.random.split(step_key)
            probabilities = weights / jnp.maximum(jnp.sum(weights), 1.0)
            index = jax.random.choice(index_key, weights.shape[0], (self.batch_size,), p=probabilities)
            return step(state, (index, weights[index], noise_key))

        state = (networks, optimizer.init(networks))
        if self.steps_per_generation is None:
            (networks, _), _ = jax.lax.scan(epoch, state, jax.random.split(key, self.epochs))
        else:
            (networks, _), _ = jax.lax.scan(fixed_step, state, jax.random.split(key, self.steps_per_generation))
        return networks

    def fit(self, key: jax.Array, data: jax.Array, weights: jax.Array, knobs: dict, previous: dict) -> dict:
        """Train from scratch or from `previous` (config.model.train_from) on the weighted pool of images."""
        init_key, train_key = jax.random.split(key)
        start = self._init_networks(init_key)
        is_later_generation = previous["fitted"] > 0
        if self.train_from == "previous":
            start = _where(is_later_generation, previous["networks"], start)
        networks = self._train(train_key, start, data, weights.astype(jnp.float32), knobs)
        encoder_gen0 = _where(is_later_generation, previous["encoder_gen0"], networks["encoder"])
        return {"networks": networks, "encoder_gen0": encoder_gen0, "fitted": jnp.ones((), jnp.float32)}

    def sample(self, key: jax.Array, params: dict, num_samples: int, knobs: dict) -> jax.Array:
        """Decode z ~ N(0, tau^2 I): Bernoulli means (the paper's choice) or binarized Bernoulli draws."""
        latent_key, pixel_key = jax.random.split(key)
        latents = knobs["sampling_temperature"] * jax.random.normal(latent_key, (num_samples, self.encoder.latent_dim))
        decode = lambda z: jax.nn.sigmoid(self.decoder.apply(params["networks"]["decoder"], z))  # noqa: E731
        means = apply_in_chunks(decode, latents, self.chunk_size)
        if self.sample_mode == "bernoulli":
            return jax.random.bernoulli(pixel_key, means).astype(jnp.float32)
        return means

    def log_likelihood(self, params: dict, data: jax.Array, knobs: dict) -> jax.Array:
        """Curation score float32 [n]: each image's ELBO at beta = 1, a lower bound on log p(x) (Kingma & Welling 2014).

        ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || N(0, I)): the KL analytic, the expectation one reparameterized
        draw z = mu + sigma * eps with eps fixed (PRNGKey(0), one row per image, the same in every chain, generation and
        model), so the score is a deterministic function of (params, x) and equals minus the training loss at beta = 1
        for that eps. For decoded means (continuous x) it is the BCE score the model trains on, not a normalized
        density. Knobs are unused: the bound does not depend on the training beta.
        """
        del knobs
        noise = jax.random.normal(jax.random.PRNGKey(0), (data.shape[0], self.encoder.latent_dim))
        one = jnp.float32(1.0)
        nets = params["networks"]
        loss = lambda x: negative_elbo_given_noise(self.encoder, self.decoder, nets, x[0], x[1], one)  # noqa: E731
        return -apply_in_chunks(loss, (data, noise), self.chunk_size)

    def good_threshold(self) -> float:
        """t with #{real test scores <= t} >= good_region_mass * n exactly (host; _vae_verifier.threshold)."""
        scores = self.reference()["good_region"]["real_test_score"]
        return _vae_verifier.threshold(np.asarray(scores), self.good_region_mass)

    def good_score(self, images: jax.Array) -> jax.Array:
        """min_c (f - mu_c)^T S^-1 (f - mu_c) of the classifier features f (Lee et al. 2018), float32 [n]."""
        reference = self.reference()
        region = reference["good_region"]
        features = self.classifier_outputs(reference["classifier"], images)[1]
        return image_metrics.min_mahalanobis_sq(features, region["whitening"], region["class_means"])

    def is_good(self, data: jax.Array, knobs: dict) -> jax.Array:
        """Verifier oracle bool [n] (Feng et al. 2024): the image lies in the real data's high-density feature region.

        Good iff good_score(x) <= good_threshold(): the class-conditional Gaussians (shared covariance) fitted to the
        real training images' classifier features (Lee et al. 2018) put x within the Mahalanobis radius of some class
        mean that holds good_region_mass of the held-out real (grey) test images, in either sample mode (binarized
        real digits pass only 21%). Defined by the true data and the classifier trained once on it, never by the
        chain's model. The top softmax probability was rejected: on digits it passes 36% of uniform noise at its 5%
        real quantile (Mahalanobis: 0%; BUILD_NOTES.md, "VAE curation hooks"). Blurred class averages pass: it is no
        sharpness test.
        """
        del knobs
        return self.good_score(data) <= self.good_threshold()

    def preference_reward(self, kind: str, data: jax.Array, knobs: dict) -> jax.Array:
        """class_preference, float32 [n]: s(x) = log softmax(f(x))_c, f the feature classifier's logits (trained once
        on real images), c = knobs["preferred_class"].

        With r = beta s, Bradley-Terry keeps candidate i of K with probability p(c | x_i)^beta / sum_j p(c | x_j)^beta,
        and the K -> infinity kept law is p(x) p(c | x)^beta / Z (Ferbach et al. 2024): beta = 1 is the class-c
        conditional p(x | c) of a calibrated classifier (Bayes), large beta keeps the candidate most surely c.
        """
        del kind  # class_preference is the family's only reward
        logits = self.classifier_outputs(self.reference()["classifier"], data)[0]
        return image_metrics.class_log_probability(logits, knobs["preferred_class"])

    def classifier_outputs(self, classifier_params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(logits, features) of the feature classifier, in chunks."""
        return apply_in_chunks(lambda x: self.classifier.apply(classifier_params, x), images, self.chunk_size)

    def evaluate(self, params: dict, samples: jax.Array, reference: dict, knobs: dict) -> dict[str, jax.Array]:
        """Collapse metrics of one chain (latent spread under the gen-0 encoder, feature distances, test ELBO).

        Plus two image artifacts [preview_images, H, W] for per-generation grids: `sample_images`, the first generated
        images (what the next generation trains on), and `decoded_means`, sigmoid(decoder(z)) at fixed z ~ N(0, I)
        shared by every chain and generation: readable when samples are binarized; with train_from=previous a grid
        column follows one latent point as the decoder drifts (from scratch, each generation lays out z anew).
        """
        previews = {}
        if self.preview_images:
            # A host constant (no random-number op to compile): the same latent points in every chain and generation.
            fixed_latents = np.random.default_rng(0).standard_normal((self.preview_images, self.encoder.latent_dim))
            fixed_latents = jnp.asarray(fixed_latents, jnp.float32)
            decoded = jax.nn.sigmoid(self.decoder.apply(params["networks"]["decoder"], fixed_latents))
            previews = {"sample_images": samples[: self.preview_images], "decoded_means": decoded}
        if self.metric_num_samples is not None:
            samples = samples[: self.metric_num_samples]
        encode = lambda x: self.encoder.apply(params["encoder_gen0"], x)[0]  # noqa: E731
        # Spread of the gen-0 encoder's means across generated images: sqrt(mean_j Var_i mu_ij). Unlike a flat
        # mu.std() over images and dimensions it is 0 when every image is the same (offsets between dims don't count).
        latent_std = jnp.sqrt(jnp.mean(jnp.var(apply_in_chunks(encode, samples, self.chunk_size), axis=0)))
        logits, features = self.classifier_outputs(reference["classifier"], samples)
        quality = image_metrics.sample_feature_metrics(
            reference, logits, features, self.precision_recall_size, self.precision_recall_k
        )
        # beta = 1 and a fixed noise draw: the same common random numbers for every chain and generation.
        elbo_loss = lambda x: negative_elbo(  # noqa: E731
            self.encoder, self.decoder, params["networks"], x, jax.random.PRNGKey(0), jnp.float32(1.0)
        )
        elbo = -jnp.mean(apply_in_chunks(elbo_loss, reference["test_images"], self.chunk_size))
        metrics = {"latent_std_gen0_encoder": latent_std, **quality, "elbo_real_test": elbo, **previews}
        if self.class_preference:
            # Share of the generation's images the classifier calls c (the reward side of Ferbach et al.'s trade-off).
            preferred = jnp.argmax(logits, axis=-1) == jnp.asarray(knobs["preferred_class"]).astype(jnp.int32)
            metrics["preferred_class_share"] = jnp.mean(preferred.astype(jnp.float32))
        return metrics

    def reference(self) -> dict:
        """Feature classifier trained once on the real training split, and real-side statistics of the test set."""
        settings = (self.classifier, self.classifier_epochs, self.classifier_seed, self.precision_recall_size)
        key = (*settings, self.precision_recall_k, self.train_images.tobytes(), self.test_images.tobytes())
        if key not in _REFERENCE_CACHE:
            with jax.ensure_compile_time_eval():  # concrete even when first asked for inside a trace (is_good)
                _REFERENCE_CACHE[key] = self._build_reference()
        return _REFERENCE_CACHE[key]

    def _build_reference(self) -> dict:
        """Train the classifier; real test features' moments, P/R radii, is_good's class Gaussians (host, once)."""
        reference = classifier_reference(
            self.classifier, self.train_images, self.train_labels, self.test_images, self.test_labels,
            self.classifier_seed, self.classifier_epochs, self.precision_recall_size, self.precision_recall_k,
            self.chunk_size, "vae",
        )  # fmt: skip
        features = jax.jit(lambda x: self.classifier_outputs(reference["classifier"], x)[1])
        reference["good_region"] = jax.tree.map(jnp.asarray, _vae_verifier.fit_good_region(features, self))
        return reference


def make_model(config: Any, settings: FamilySettings | None = None) -> VAEModel:
    """Build the VAE family from its resolved config (base.make_model fills the declared defaults)."""
    settings = family_settings(config) if settings is None else settings
    model = VAEModel(
        **_vae_config.model_settings(config, settings.good_region_mass),
        class_preference=settings.preference_reward == "class_preference",
    )
    if model.class_preference:
        _vae_config.check_preferred_class(config, model.classifier.num_classes)
    return model
