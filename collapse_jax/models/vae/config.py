"""Validation of config.model for the VAE family (one-line ValueErrors before anything compiles) and its settings.

`model_settings(config)` loads the images and returns the keyword arguments of `vae.VAEModel`.
"""

from __future__ import annotations

from typing import Any

from collapse_jax.data.images import DATASETS, load_images
from collapse_jax.models.vae.conv import use_matmul
from collapse_jax.models.vae.nets import Decoder, Encoder, FeatureClassifier

TRAIN_FROM = ("scratch", "previous")
SAMPLE_MODES = ("mean", "bernoulli")


def _check_knob(config: Any, field: str, low: float, low_inclusive: bool) -> None:
    """One-line ValueError unless every value of a (scalar or list) knob lies above `low`."""
    values = getattr(config.model, field)
    for value in values if isinstance(values, (list, tuple)) else [values]:
        ok = isinstance(value, (int, float)) and (value >= low if low_inclusive else value > low)
        if not ok:
            raise ValueError(
                f"config.model.{field}: {value!r} not allowed; must be a number {'>=' if low_inclusive else '>'} {low}"
            )


def _positive_int(config: Any, field: str, optional: bool = False) -> int | None:
    """Read a positive integer setting (None allowed when optional), or raise a one-line ValueError."""
    value = config.model.get(field, None)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"config.model.{field}: {value!r} not allowed; must be a positive integer")
    return value


def check_preferred_class(config: Any, num_classes: int) -> None:
    """One-line ValueError unless every config.curation.preferred_class is a class of the feature classifier."""
    values = config.curation.get("preferred_class")
    for value in values if isinstance(values, (list, tuple)) else [values]:
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value < num_classes
        ):
            raise ValueError(
                f"config.curation.preferred_class: {value!r} not allowed; must be a class index in [0, {num_classes})"
            )


def model_settings(config: Any, good_region_mass: float) -> dict:
    """Validate config.model, load the images: `VAEModel` keyword arguments (good_region_mass parsed by the caller)."""
    model = config.model
    if model.dataset not in DATASETS:
        raise ValueError(f"config.model.dataset: {model.dataset!r} not allowed; allowed: {', '.join(DATASETS)}")
    if model.train_from not in TRAIN_FROM:
        raise ValueError(f"config.model.train_from: {model.train_from!r} not allowed; allowed: {', '.join(TRAIN_FROM)}")
    if model.sample_mode not in SAMPLE_MODES:
        raise ValueError(
            f"config.model.sample_mode: {model.sample_mode!r} not allowed; allowed: {', '.join(SAMPLE_MODES)}"
        )
    channels = tuple(model.encoder_channels)
    if not channels or not all(isinstance(width, int) and width > 0 for width in channels):
        raise ValueError(f"config.model.encoder_channels: {channels!r} not allowed; must be positive integers")
    sizes = {f: _positive_int(config, f) for f in ("latent_dim", "epochs", "batch_size", "precision_recall_size")}
    sizes |= {f: _positive_int(config, f) for f in ("precision_recall_k", "classifier_epochs", "chunk_size")}
    optional_fields = ("train_size", "test_size", "metric_num_samples", "steps_per_generation")
    optional = {f: _positive_int(config, f, optional=True) for f in optional_fields}
    preview_images = model.get("preview_images", 0)
    if not isinstance(preview_images, int) or not 0 <= preview_images <= config.samples_per_generation:
        raise ValueError(
            f"config.model.preview_images: {preview_images!r} not allowed; must be an integer in "
            f"[0, samples_per_generation = {config.samples_per_generation}]"
        )
    _check_knob(config, "kl_weight", 0.0, low_inclusive=True)
    _check_knob(config, "learning_rate", 0.0, low_inclusive=False)
    _check_knob(config, "sampling_temperature", 0.0, low_inclusive=True)
    _check_knob(config, "weight_decay", 0.0, low_inclusive=True)

    train_images, train_labels = load_images(model.dataset, "train", model.data_dir, model.source_dir)
    test_images, test_labels = load_images(model.dataset, "test", model.data_dir, model.source_dir)
    factor = 2 ** len(channels)
    if train_images.shape[1] % factor or train_images.shape[2] % factor:
        raise ValueError(
            f"config.model.encoder_channels: {len(channels)} stride-2 layers need image sides divisible by {factor}; "
            f"{model.dataset} images are {train_images.shape[1]}x{train_images.shape[2]}"
        )
    if sizes["precision_recall_k"] >= sizes["precision_recall_size"]:
        raise ValueError("config.model.precision_recall_k: must be smaller than config.model.precision_recall_size")
    matmul = use_matmul(model.get("conv_implementation", "auto"))
    return dict(
        encoder=Encoder(channels=channels, latent_dim=sizes["latent_dim"], matmul=matmul),
        decoder=Decoder(channels=channels, image_shape=train_images.shape[1:], matmul=matmul),
        classifier=FeatureClassifier(
            channels=tuple(model.classifier_channels),
            feature_dim=model.classifier_feature_dim,
            num_classes=10,
            matmul=matmul,
        ),
        train_images=train_images[: optional["train_size"]],
        train_labels=train_labels[: optional["train_size"]],
        test_images=test_images[: optional["test_size"]],
        test_labels=test_labels[: optional["test_size"]],
        epochs=sizes["epochs"],
        steps_per_generation=optional["steps_per_generation"],
        batch_size=sizes["batch_size"],
        weight_decay=float(model.weight_decay),
        train_from=model.train_from,
        sample_mode=model.sample_mode,
        metric_num_samples=optional["metric_num_samples"],
        preview_images=preview_images,
        precision_recall_size=sizes["precision_recall_size"],
        precision_recall_k=sizes["precision_recall_k"],
        classifier_epochs=sizes["classifier_epochs"],
        classifier_seed=int(model.classifier_seed),
        chunk_size=sizes["chunk_size"],
        good_region_mass=float(good_region_mass),
    )
