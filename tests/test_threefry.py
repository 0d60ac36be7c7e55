"""The unrolled generator (collapse_jax/models/_threefry.py) is JAX's own, bit for bit: swapping it in for
jax.random.normal on the Gaussian's hot path changes no result, only the cost (BUILD_NOTES, "Unrolled threefry")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.models import _threefry

SHAPES = [(1,), (7,), (100, 1), (33, 3), (1000, 2), (2, 3, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_bits_uniforms_and_normals_equal_jax_random_for_typed_and_raw_keys(shape):
    for seed in (0, 1, 12345):
        typed = jax.random.fold_in(jax.random.key(seed), 17)
        raw = jax.random.PRNGKey(seed)
        for key in (typed, raw):
            np.testing.assert_array_equal(_threefry.bits32(key, shape), jax.random.bits(key, shape, jnp.uint32))
            np.testing.assert_array_equal(_threefry.normal(key, shape), jax.random.normal(key, shape))
            np.testing.assert_array_equal(_threefry.uniform(key, shape), jax.random.uniform(key, shape))


def test_normals_equal_jax_random_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(3), 64)
    ours = jax.jit(jax.vmap(lambda k: _threefry.normal(k, (100, 2))))(keys)
    theirs = jax.jit(jax.vmap(lambda k: jax.random.normal(k, (100, 2))))(keys)
    np.testing.assert_array_equal(ours, theirs)


def test_other_key_types_fall_back_to_jax_random():
    key = jax.random.key(5, impl="rbg")
    np.testing.assert_array_equal(_threefry.normal(key, (50, 2)), jax.random.normal(key, (50, 2)))


def test_threefry_2x32_is_jax_threefry_on_a_known_answer():
    # Salmon et al.'s Random123 known-answer test for Threefry-2x32-20: key = counter = 0 -> (0x6b200159, 0x99ba4efe)
    zero = jnp.uint32(0)
    words = _threefry.threefry_2x32(zero, zero, zero, zero)
    assert [int(w) for w in words] == [0x6B200159, 0x99BA4EFE]
