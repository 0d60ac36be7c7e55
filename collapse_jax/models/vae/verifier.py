"""The VAE's verifier oracle (`is_good`): a class-conditional Gaussian region in the feature classifier's space.

Fitted once on the host from real images (Lee et al. 2018); its radius holds good_region_mass of the real test images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.models.vae import image_metrics


def fit_good_region(features: Callable[[jax.Array], jax.Array], model: Any) -> dict:
    """Class Gaussians on the real training images' features and the real test images' scores (host, once).

    Real grey-level images for both sample modes. Binarized real images were tried for sample_mode = bernoulli and
    rejected: binarized 8x8 digits are so noisy that the region then passed 97% of pixel-marginal noise and 75% of
    uniform noise (the grey region passes 21% of binarized real digits; BUILD_NOTES.md, "VAE curation hooks").
    """
    train, test = model.real_data(None, {}), jnp.asarray(model.test_images, jnp.float32) / 255.0
    whitening, class_means = image_metrics.class_gaussian_whitening(
        np.asarray(features(train)), model.train_labels, model.classifier.num_classes
    )
    score = image_metrics.min_mahalanobis_sq(features(test), jnp.asarray(whitening), jnp.asarray(class_means))
    return {"whitening": whitening, "class_means": class_means, "real_test_score": np.asarray(score)}


def threshold(real_test_scores: np.ndarray, mass: float) -> float:
    """t = s_(ceil(mass n)) of the n scores sorted ascending: #{s_i <= t} >= mass * n exactly, and no smaller t."""
    scores = np.sort(np.asarray(real_test_scores))
    return float(scores[max(int(np.ceil(mass * scores.size - 1e-6)), 1) - 1])
