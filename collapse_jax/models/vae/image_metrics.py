"""Sample-quality metrics in a classifier's feature space: Frechet distance, k-NN precision/recall, class entropy.

Real-data halves are computed once on the host (`real_feature_statistics`); the generated halves run per chain in jit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def feature_moments(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and unbiased covariance (ddof 1, as numpy.cov and pytorch-fid) of features [N, D]."""
    mean = features.mean(axis=0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix by eigendecomposition (negative round-off eigenvalues clipped)."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(matrix, np.float64))
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(real_mean: jax.Array, real_cov_sqrt: jax.Array, fake_mean: jax.Array, fake_cov: jax.Array):
    """Frechet distance between N(m_r, S_r) and N(m_f, S_f) (Dowson & Landau 1982; FID, Heusel et al. 2017).

    FD = |m_r - m_f|^2 + tr S_r + tr S_f - 2 tr (S_r^1/2 S_f S_r^1/2)^1/2; the inner matrix is symmetric PSD, so its
    square root's trace is the sum of the square roots of its eigenvalues (eigh, stable under jit, unlike sqrtm).
    """
    inner = real_cov_sqrt @ fake_cov @ real_cov_sqrt
    inner = 0.5 * (inner + inner.T)
    cross_trace = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(inner), 0.0, None)))
    real_trace = jnp.sum(real_cov_sqrt**2)  # tr S_r = ||S_r^1/2||_F^2
    return jnp.sum((real_mean - fake_mean) ** 2) + real_trace + jnp.trace(fake_cov) - 2.0 * cross_trace


def squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pairwise squared Euclidean distances [N_a, N_b] via |a|^2 + |b|^2 - 2 a.b (clipped at 0 against round-off)."""
    cross = a @ b.T
    return jnp.clip(jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2.0 * cross, 0.0, None)


def kth_neighbour_radius_sq(features: jax.Array, k: int) -> jax.Array:
    """Squared distance from each point to its k-th nearest other point (the point itself is its 0-th neighbour)."""
    nearest = -jax.lax.top_k(-squared_distances(features, features), k + 1)[0]
    return nearest[:, k]


def precision_recall(
    real: jax.Array, real_radius_sq: jax.Array, fake: jax.Array, fake_radius_sq: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) from k-NN balls around each set's points.

    precision = share of fake points inside some real ball, |f - r| <= radius_k(r);
    recall = share of real points inside some fake ball, |r - f| <= radius_k(f).
    """
    distances = squared_distances(fake, real)  # [N_fake, N_real]
    precision = jnp.mean(jnp.any(distances <= real_radius_sq[None, :], axis=1))
    recall = jnp.mean(jnp.any(distances <= fake_radius_sq[:, None], axis=0))
    return precision, recall


def class_histogram_entropy(logits: jax.Array) -> jax.Array:
    """Entropy (nats) of the histogram of predicted classes: ln(10) for balanced classes, 0 when one class remains."""
    counts = jnp.sum(jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1]), axis=0)
    probabilities = counts / logits.shape[0]
    safe = jnp.where(probabilities > 0, probabilities, 1.0)  # 0 log 0 = 0
    return jnp.sum(-probabilities * jnp.log(safe)) + 0.0  # + 0.0 turns -0.0 (one class left) into 0.0


def sample_feature_metrics(
    reference: dict, logits: jax.Array, features: jax.Array, precision_recall_size: int, precision_recall_k: int
) -> dict[str, jax.Array]:
    """frechet_distance, precision, recall (the first precision_recall_size samples) and class_histogram_entropy of
    generated images' classifier outputs against the real halves in `reference` (real_feature_statistics' keys)."""
    fake_mean, fake_cov = feature_moments(features)
    frechet = frechet_distance(reference["feature_mean"], reference["feature_cov_sqrt"], fake_mean, fake_cov)
    fake = features[:precision_recall_size]
    fake_radius_sq = kth_neighbour_radius_sq(fake, precision_recall_k)
    precision, recall = precision_recall(
        reference["precision_recall_features"], reference["precision_recall_radius_sq"], fake, fake_radius_sq
    )
    return {
        "frechet_distance": frechet,
        "precision": precision,
        "recall": recall,
        "class_histogram_entropy": class_histogram_entropy(logits),
    }


def class_log_probability(logits: jax.Array, target: jax.Array) -> jax.Array:
    """log softmax(logits)_c per image, [n]; c a (traced, float or int) class index, the same for every image."""
    return jax.nn.log_softmax(logits, axis=-1)[:, jnp.asarray(target).astype(jnp.int32)]


def real_feature_statistics(features: np.ndarray, num_precision_recall: int, k: int) -> dict[str, np.ndarray]:
    """Host-side real halves: mean, covariance square root, and the P/R subset with its k-NN radii."""
    features = np.asarray(features, np.float64)
    mean = features.mean(axis=0)
    cov = np.cov(features, rowvar=False)
    subset = features[:num_precision_recall]
    radius_sq = np.asarray(kth_neighbour_radius_sq(jnp.asarray(subset, jnp.float32), k))
    return {
        "feature_mean": mean.astype(np.float32),
        "feature_cov_sqrt": psd_sqrt(cov).astype(np.float32),
        "precision_recall_features": subset.astype(np.float32),
        "precision_recall_radius_sq": radius_sq.astype(np.float32),
    }


def class_gaussian_whitening(features: np.ndarray, labels: np.ndarray, num_classes: int, ridge: float = 1e-3):
    """Host fit of Lee et al. 2018's class-conditional Gaussians with a shared covariance in feature space.

    mu_c = mean of class c's features, S = (1/N) sum_i (f_i - mu_{y_i})(f_i - mu_{y_i})^T + ridge * mean(diag S) I (dead
    ReLU units have zero variance). Returns (W, mu W) with W W^T = S^-1, so Mahalanobis distances are Euclidean in f W.
    """
    features = np.asarray(features, np.float64)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(num_classes)])
    centred = features - means[labels]
    cov = centred.T @ centred / features.shape[0]
    cov += ridge * np.mean(np.diag(cov)) * np.eye(cov.shape[0])
    whitening = np.linalg.cholesky(np.linalg.inv(cov))
    return whitening.astype(np.float32), (means @ whitening).astype(np.float32)


def min_mahalanobis_sq(features: jax.Array, whitening: jax.Array, whitened_means: jax.Array) -> jax.Array:
    """min_c (f - mu_c)^T S^-1 (f - mu_c) per row of features [N, D] (Lee et al. 2018's confidence score, negated)."""
    return jnp.min(squared_distances(features @ whitening, whitened_means), axis=1)
