"""The diffusion family's image truths (scikit-learn's 8x8 digits, Fashion-MNIST): flat pixels in [-1, 1], per-chain
training sets, and the VAE family's classifier-feature metrics (Frechet distance, k-NN precision / recall, entropy).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.data.images import load_images
from collapse_jax.models.diffusion import unet
from collapse_jax.models.fields import Field, choice, integer, requires, text
from collapse_jax.models.vae import image_metrics
from collapse_jax.models.vae.conv import IMPLEMENTATIONS, use_matmul
from collapse_jax.models.vae.nets import FeatureClassifier, apply_in_chunks, classifier_reference

# model.truth -> the data set's tfds builder (collapse_jax/data/images.py).
DATASETS = {"digits": "digits", "fashion_mnist": "fashion_mnist_local"}
IMAGE_TRUTHS = tuple(DATASETS)
# Samples saved per chain per generation when model.preview_samples is None: a row of an image grid, or a scatter.
DEFAULT_PREVIEW = {"images": 8, "points": 256}
# reference() trains a classifier (seconds); the engine builds a model per group and again on resume, so reuse it.
_REFERENCE_CACHE: dict[tuple, dict] = {}

# config.model fields of the image truths and the U-Net, declared once (the 2-D truths ignore them).
CONFIG_FIELDS = {
    "data_dir": text("image truths: prepared tfds data dir (None: the default)", optional=True),
    "source_dir": text("fashion_mnist: folder of the IDX files (None: Debian's)", optional=True),
    "train_size": integer("image truths: first N training images (None: all)", low=1, optional=True),
    "test_size": integer("image truths: first N test images, the metrics' real side (None: all)", low=1, optional=True),
    "preview_samples": integer(
        "generated samples saved per chain per generation for the report's grids (None: 8 images, or 256 points of a "
        "2-D truth; 0: none)",
        low=0,
        optional=True,
    ),
    "norm_groups": integer("unet: GroupNorm groups, dividing model.width (0: no normalization)", low=0, default=8),
    "conv_implementation": choice(
        "unet, classifier: auto, xla or matmul convolutions", IMPLEMENTATIONS, default="auto"
    ),
    "precision_recall_size": integer(
        "image truths: points per side in precision / recall (None: M, at most the test images)", low=1, optional=True
    ),
    "precision_recall_k": integer("image truths: k of precision / recall's k-NN balls", low=1, default=5),
    "classifier_channels": Field("ints", "image truths: feature classifier conv widths", low=1, default=(16, 32)),
    "classifier_feature_dim": integer("image truths: feature size of the classifier", low=1, default=64),
    "classifier_epochs": integer("image truths: epochs of the classifier", low=1, default=30),
    "classifier_seed": integer("image truths: seed of the classifier", low=0, default=0),
    "chunk_size": integer("image truths: images per chunk when scoring (bounds memory per chain)", low=1, default=512),
}
CONFIG_RULES = (
    requires(
        "score",
        ("unet",),
        "truth",
        IMAGE_TRUTHS,
        f"config.model.truth: score = 'unet' needs an image truth ({', '.join(IMAGE_TRUTHS)}), got {{got}}",
    ),
    requires(
        "truth",
        IMAGE_TRUTHS,
        "dim",
        (2,),
        "config.model.dim: the {when} truth's dimension is its pixel count; leave model.dim unset, got {got}",
    ),
)


@dataclasses.dataclass(frozen=True, eq=False)
class ImageTruth:
    """The real images (uint8 host constants shared by every chain), the feature classifier and the U-Net's settings."""

    name: str
    train_images: np.ndarray  # uint8 [N, H, W]
    train_labels: np.ndarray  # the classifier's training labels
    test_images: np.ndarray  # uint8 [N_test, H, W]: the real side of every sample metric
    test_labels: np.ndarray  # the classifier's logged test accuracy
    classifier: FeatureClassifier
    classifier_epochs: int
    classifier_seed: int
    precision_recall_size: int
    precision_recall_k: int
    chunk_size: int
    norm_groups: int
    matmul: bool  # convolutions as slices + matmul (vae/conv.py: XLA:CPU's conv gradients are slow in loops)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def dim(self) -> int:
        return int(np.prod(self.image_shape))

    def pixels(self) -> jax.Array:
        """The training images as flat points [N, H*W] in [-1, 1] (x / 127.5 - 1, DDPM's scaling)."""
        return jnp.asarray(self.train_images.reshape(-1, self.dim), jnp.float32) / 127.5 - 1.0

    def real_data(self, key: jax.Array, size: int) -> jax.Array:
        """`size` distinct training images drawn with the chain's key: each chain trains on its own subset."""
        index = jax.random.choice(key, self.train_images.shape[0], (size,), replace=False)
        return self.pixels()[index]

    def sample_truth(self, key: jax.Array, num_samples: int) -> jax.Array:
        """New real data: training images drawn uniformly with replacement (the data set is the truth)."""
        return self.pixels()[jax.random.randint(key, (num_samples,), 0, self.train_images.shape[0])]

    def as_images(self, points: jax.Array) -> jax.Array:
        """Flat points in [-1, 1] -> images [n, H, W] in [0, 1], clipped: the classifier's and the grids' input."""
        return jnp.clip(0.5 * (points + 1.0), 0.0, 1.0).reshape(points.shape[0], *self.image_shape)

    def reference(self) -> dict:
        """The VAE family's real side (vae.nets.classifier_reference), built once per data set and classifier."""
        settings = (self.classifier, self.classifier_epochs, self.classifier_seed, self.precision_recall_size)
        key = (*settings, self.precision_recall_k, self.train_images.tobytes(), self.test_images.tobytes())
        if key not in _REFERENCE_CACHE:
            with jax.ensure_compile_time_eval():
                _REFERENCE_CACHE[key] = classifier_reference(
                    self.classifier, self.train_images, self.train_labels, self.test_images, self.test_labels,
                    self.classifier_seed, self.classifier_epochs, self.precision_recall_size, self.precision_recall_k,
                    self.chunk_size, "diffusion",
                )  # fmt: skip
        return _REFERENCE_CACHE[key]

    def evaluate(self, samples: jax.Array, reference: dict) -> dict[str, jax.Array]:
        """frechet_distance, precision, recall and class_histogram_entropy of the samples' classifier features."""
        params = reference["classifier"]
        logits, features = apply_in_chunks(
            lambda x: self.classifier.apply(params, x), self.as_images(samples), self.chunk_size
        )
        return image_metrics.sample_feature_metrics(
            reference, logits, features, self.precision_recall_size, self.precision_recall_k
        )


METRIC_NAMES = ("frechet_distance", "precision", "recall", "class_histogram_entropy")


def preview_count(model: Any, truth: str, dim: int, samples_per_generation: int) -> int:
    """Samples saved per chain per generation (at most M): model.preview_samples, else the truth's default; 0 for a
    truth with no picture (a Gaussian in other than 2 dimensions)."""
    kind = "images" if truth in IMAGE_TRUTHS else "points" if dim == 2 else None
    if kind is None:
        return 0
    count = model.get("preview_samples")
    return min(DEFAULT_PREVIEW[kind] if count is None else int(count), samples_per_generation)


def load(model: Any, samples_per_generation: int, real_data_size: int | None) -> ImageTruth:
    """Load model.truth's images and build the classifier (one-line ValueError when a size does not fit the data)."""
    dataset = DATASETS[model.truth]
    train_images, train_labels = load_images(dataset, "train", model.get("data_dir"), model.get("source_dir"))
    test_images, test_labels = load_images(dataset, "test", model.get("data_dir"), model.get("source_dir"))
    train_images, train_labels = train_images[: model.get("train_size")], train_labels[: model.get("train_size")]
    test_images, test_labels = test_images[: model.get("test_size")], test_labels[: model.get("test_size")]
    size = real_data_size or samples_per_generation
    if size > len(train_images):
        field = "real_data_size" if real_data_size else "samples_per_generation"
        raise ValueError(
            f"config.model.{field}: the {model.truth} training set holds {len(train_images)} images; a chain's real "
            f"training set draws {size} distinct ones"
        )
    pr_size = min(
        model.get("precision_recall_size") or samples_per_generation, samples_per_generation, len(test_images)
    )
    if model.precision_recall_k >= pr_size:
        raise ValueError(
            f"config.model.precision_recall_k: must be smaller than the {pr_size} points per side of precision / recall"
        )
    matmul = use_matmul(model.conv_implementation)
    if model.score == "unet":  # the U-Net's settings against the image size, as one-line errors before any compile
        unet.make_unet(train_images.shape[1:], unet.channels_for(model.width, model.depth), model.norm_groups, matmul)
    return ImageTruth(
        name=model.truth,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classifier=FeatureClassifier(
            channels=tuple(model.classifier_channels),
            feature_dim=int(model.classifier_feature_dim),
            num_classes=10,
            matmul=matmul,
        ),
        classifier_epochs=int(model.classifier_epochs),
        classifier_seed=int(model.classifier_seed),
        precision_recall_size=pr_size,
        precision_recall_k=int(model.precision_recall_k),
        chunk_size=int(model.chunk_size),
        norm_groups=int(model.norm_groups),
        matmul=matmul,
    )
