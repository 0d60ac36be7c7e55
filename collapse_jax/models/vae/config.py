"""The VAE family's settings from its resolved config: `model_settings` loads the images and returns `VAEModel`'s
keyword arguments, after the checks no field declaration can state (they compare two fields or need the images).
"""

from __future__ import annotations

from typing import Any

from collapse_jax.data.images import load_images
from collapse_jax.models.vae.conv import use_matmul
from collapse_jax.models.vae.nets import Decoder, Encoder, FeatureClassifier

TRAIN_FROM = ("scratch", "previous")
SAMPLE_MODES = ("mean", "bernoulli")


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
    """Load the images and build the nets: `VAEModel` keyword arguments (good_region_mass parsed by the caller)."""
    model = config.model
    channels = tuple(model.encoder_channels)
    train_images, train_labels = load_images(model.dataset, "train", model.data_dir, model.source_dir)
    test_images, test_labels = load_images(model.dataset, "test", model.data_dir, model.source_dir)
    factor = 2 ** len(channels)
    if train_images.shape[1] % factor or train_images.shape[2] % factor:
        raise ValueError(
            f"config.model.encoder_channels: {len(channels)} stride-2 layers need image sides divisible by {factor}; "
            f"{model.dataset} images are {train_images.shape[1]}x{train_images.shape[2]}"
        )
    matmul = use_matmul(model.conv_implementation)
    return dict(
        encoder=Encoder(channels=channels, latent_dim=model.latent_dim, matmul=matmul),
        decoder=Decoder(channels=channels, image_shape=train_images.shape[1:], matmul=matmul),
        classifier=FeatureClassifier(
            channels=tuple(model.classifier_channels),
            feature_dim=model.classifier_feature_dim,
            num_classes=10,
            matmul=matmul,
        ),
        train_images=train_images[: model.train_size],
        train_labels=train_labels[: model.train_size],
        test_images=test_images[: model.test_size],
        test_labels=test_labels[: model.test_size],
        epochs=model.epochs,
        steps_per_generation=model.steps_per_generation,
        batch_size=model.batch_size,
        weight_decay=float(model.weight_decay),
        train_from=model.train_from,
        sample_mode=model.sample_mode,
        metric_num_samples=model.metric_num_samples,
        preview_images=model.preview_images,
        precision_recall_size=model.precision_recall_size,
        precision_recall_k=model.precision_recall_k,
        classifier_epochs=model.classifier_epochs,
        classifier_seed=int(model.classifier_seed),
        chunk_size=model.chunk_size,
        good_region_mass=float(good_region_mass),
    )
