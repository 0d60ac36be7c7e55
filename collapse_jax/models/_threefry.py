"""Threefry-2x32-20 written out unrolled, and jax.random's exact normals and uniforms computed with it.

jax.random's CPU lowering of threefry rolls its 20 rounds into a loop that XLA does not fuse with the code around it
(~4x the cost per word; BUILD_NOTES, "The multinomial's remaining cost"). The same generator unrolled into elementwise
integer ops fuses. `normal` and `uniform` reproduce jax.random.normal / jax.random.uniform (float32) bit for bit
(tests/test_threefry.py) for threefry keys under the default `jax_threefry_partitionable` layout, so swapping them in
changes no result; for any other key type or layout they call jax.random itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
KEY_PARITY = 0x1BD11BDA
# jax.random.normal's uniform range: (nextafter(-1, 0), 1), mapped through sqrt(2) erfinv.
_LOW = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
_HIGH = np.float32(1.0)
# Which of the two bit-identical generators `normal` and `uniform` trace: "unrolled" (this module's) or "jax"
# (jax.random itself). Read when a function is traced, so it must be set around the trace (`generator`).
GENERATORS = ("unrolled", "jax")
_GENERATOR = contextvars.ContextVar("collapse_jax_generator", default="unrolled")


@contextlib.contextmanager
def generator(name: str) -> Iterator[None]:
    """Trace `normal` and `uniform` with the generator `name` inside the block (same values either way)."""
    if name not in GENERATORS:
        raise ValueError(f"generator: must be one of {', '.join(GENERATORS)}, got {name!r}")
    token = _GENERATOR.set(name)
    try:
        yield
    finally:
        _GENERATOR.reset(token)


def _unrolled(key: jax.Array) -> bool:
    """Whether to draw with the unrolled generator: chosen, and a key it reproduces jax.random for."""
    return _GENERATOR.get() == "unrolled" and _is_plain_threefry(key)


def threefry_2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"; JAX's default
    generator) of the counter words (x0, x1) under the key words (k0, k1), all uint32, broadcasting."""
    schedule = (k0, k1, k0 ^ k1 ^ jnp.uint32(KEY_PARITY))
    x0, x1 = x0 + k0, x1 + k1
    for index in range(20):
        rotation = ROTATIONS[index // 4 % 2][index % 4]
        x0 = x0 + x1
        x1 = ((x1 << rotation) | (x1 >> (32 - rotation))) ^ x0
        if index % 4 == 3:  # key injection s = 1..5
            injection = index // 4 + 1
            x0 = x0 + schedule[injection % 3]
            x1 = x1 + schedule[(injection + 1) % 3] + jnp.uint32(injection)
    return x0, x1


def unit_float(bits: jax.Array) -> jax.Array:
    """The top 23 bits as a float32 in [0, 1) (as jax.random.uniform makes them)."""
    return jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - np.float32(1.0)


def _is_plain_threefry(key: jax.Array) -> bool:
    """A typed threefry2x32 key (or a raw [2] uint32 one under the default impl) with the partitionable layout."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        threefry = str(jax.random.key_impl(key)) == "threefry2x32" and key.shape == ()
    else:
        threefry = key.shape == (2,) and key.dtype == jnp.uint32 and jax.config.jax_default_prng_impl == "threefry2x32"
    return threefry and bool(jax.config.jax_threefry_partitionable)


def bits32(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """jax.random.bits(key, shape, uint32) of one threefry key: word i is the XOR of threefry's two output words at the
    64-bit counter (0, i), i the C-order index (fewer than 2^32 words)."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"bits32: {size} words per key; at most 2^32 - 1")
    words = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    counter = jnp.arange(size, dtype=jnp.uint32)
    high, low = threefry_2x32(words[0], words[1], jnp.zeros_like(counter), counter)
    return (high ^ low).reshape(shape)


def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 uniforms in [0, 1) equal to jax.random.uniform(key, shape) bit for bit, at the unrolled cost."""
    if not _unrolled(key):
        return jax.random.uniform(key, shape, jnp.float32)
    return jax.lax.max(np.float32(0.0), unit_float(bits32(key, shape)))


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """float32 standard normals equal to jax.random.normal(key, shape) bit for bit, at the unrolled generator's cost."""
    if not _unrolled(key):
        return jax.random.normal(key, shape)
    uniform = jax.lax.max(_LOW, unit_float(bits32(key, shape)) * (_HIGH - _LOW) + _LOW)
    return jax.lax.mul(np.float32(np.sqrt(2)), jax.lax.erf_inv(uniform))
