"""Toy 2-D data sets: exact geometry of noiseless points, and moments against scikit-learn's generators."""

import math

import jax
import numpy as np
import pytest
from sklearn import datasets

from collapse_jax.models import _toy_data as toy_data

N = 20_000
# Moment tolerances: a mean of N points with per-coordinate std <= 1 has standard error <= 1/sqrt(N) = 0.007;
# 0.03 is > 4 standard errors for both our draw and sklearn's, so a real mismatch (wrong radius, shift) still fails.
MOMENT_TOLERANCE = 0.03


def test_noiseless_moons_lie_on_the_two_half_circles_in_equal_shares():
    points = np.asarray(toy_data.moons(jax.random.key(0), N, noise=0.0))
    outer = np.abs(np.hypot(points[:, 0], points[:, 1]) - 1.0) < 1e-5
    inner = np.abs(np.hypot(points[:, 0] - 1.0, points[:, 1] - 0.5) - 1.0) < 1e-5
    assert np.all(outer | inner)
    assert np.all(points[outer & ~inner, 1] >= -1e-6) and np.all(points[inner & ~outer, 1] <= 0.5 + 1e-6)
    # Binomial(N, 1/2) share: std 0.0035, 4 sigma = 0.014.
    assert abs(inner.mean() - 0.5) < 0.014


def test_noiseless_circles_have_radii_one_and_factor_and_uniform_angle():
    points = np.asarray(toy_data.circles(jax.random.key(1), N, noise=0.0, factor=0.3))
    radius = np.hypot(points[:, 0], points[:, 1])
    assert np.all((np.abs(radius - 1.0) < 1e-5) | (np.abs(radius - 0.3) < 1e-5))
    angle = np.arctan2(points[:, 1], points[:, 0])
    # cos and sin of a uniform angle have mean 0 and std 1/sqrt(2): 4 standard errors = 0.02.
    assert abs(np.cos(angle).mean()) < 0.02 and abs(np.sin(angle).mean()) < 0.02


def test_noiseless_swiss_roll_radius_is_its_angle_parameter():
    points = np.asarray(toy_data.swiss_roll(jax.random.key(2), N, noise=0.0))
    t = np.hypot(points[:, 0], points[:, 1])
    assert t.min() >= 1.5 * math.pi - 1e-4 and t.max() <= 4.5 * math.pi + 1e-4
    # The point is (t cos t, t sin t): its polar angle equals t modulo 2 pi.
    difference = np.angle(np.exp(1j * (np.arctan2(points[:, 1], points[:, 0]) - t)))
    assert np.max(np.abs(difference)) < 1e-3


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("moons", lambda k: toy_data.moons(k, N, 0.05), lambda: datasets.make_moons(N, noise=0.05, random_state=0)[0]),
        (
            "circles",
            lambda k: toy_data.circles(k, N, 0.05),
            lambda: datasets.make_circles(N, noise=0.05, random_state=0)[0],
        ),
        (
            "swiss_roll",
            lambda k: toy_data.swiss_roll(k, N, 0.05) / 10.0,
            lambda: datasets.make_swiss_roll(N, noise=0.05, random_state=0)[0][:, [0, 2]] / 10.0,
        ),
    ],
)
def test_moments_match_scikit_learn_generators(name, ours, theirs):
    """Same distribution as sklearn's (i.i.d. angles here vs its even grid): means and covariances agree."""
    a, b = np.asarray(ours(jax.random.key(3))), theirs()
    np.testing.assert_allclose(a.mean(0), b.mean(0), atol=MOMENT_TOLERANCE, err_msg=name)
    np.testing.assert_allclose(np.cov(a.T), np.cov(b.T), atol=MOMENT_TOLERANCE, err_msg=name)


def test_blobs_are_centred_on_their_centres_with_cluster_std():
    centers = toy_data.blob_centers(jax.random.key(4), 3)
    assert np.all(np.abs(np.asarray(centers)) <= 10.0)
    points = np.asarray(toy_data.blobs(jax.random.key(5), N, centers, cluster_std=0.5))
    nearest = np.argmin(((points[:, None] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
    for k in range(3):
        members = points[nearest == k]
        np.testing.assert_allclose(members.mean(0), np.asarray(centers)[k], atol=MOMENT_TOLERANCE)
        np.testing.assert_allclose(members.std(0), 0.5, atol=MOMENT_TOLERANCE)


def test_unknown_dataset_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="swiss_roll"):
        toy_data.make_sampler("mnist")
