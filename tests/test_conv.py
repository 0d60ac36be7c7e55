"""Convolutions as slices + matmul: the same function, params and gradients as XLA's conv / Flax's nn.Conv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.host import config_schema, runner
from collapse_jax.models.vae import conv as _conv
from collapse_jax.models.vae.nets import Decoder, Encoder, FeatureClassifier
from experiments.configs import vae_digits


@pytest.mark.parametrize(
    "shape, kernel, strides, padding",
    [
        ((2, 28, 28, 1), (4, 4, 1, 8), (2, 2), "SAME"),
        ((2, 14, 14, 8), (4, 4, 8, 16), (2, 2), "SAME"),
        ((2, 28, 28, 1), (3, 3, 1, 8), (2, 2), "SAME"),  # odd kernel: SAME pads (0, 1)
        ((2, 8, 8, 3), (2, 2, 3, 5), (1, 1), "VALID"),
        ((2, 9, 7, 3), (3, 2, 3, 4), (2, 1), ((1, 2), (0, 1))),
    ],
)
def test_matmul_correlation_equals_xla_conv_and_its_gradients(shape, kernel, strides, padding):
    x = jax.random.normal(jax.random.key(0), shape)
    k = jax.random.normal(jax.random.key(1), kernel)

    def loss(x, k, matmul):
        return jnp.sum(jnp.sin(_conv.correlate(x, k, strides, padding, matmul)))

    np.testing.assert_allclose(
        _conv.correlate(x, k, strides, padding, True), _conv.correlate(x, k, strides, padding, False), atol=1e-5
    )
    for got, want in zip(jax.grad(loss, (0, 1))(x, k, True), jax.grad(loss, (0, 1))(x, k, False)):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_networks_have_flax_conv_params_and_the_same_outputs_either_way():
    images = jax.random.uniform(jax.random.key(2), (3, 28, 28))
    pairs = [
        (Encoder((8, 16), 4), Encoder((8, 16), 4, matmul=True), images),
        (Decoder((8, 16), (28, 28)), Decoder((8, 16), (28, 28), matmul=True), jnp.ones((3, 4))),
        (FeatureClassifier((8, 16), 32), FeatureClassifier((8, 16), 32, matmul=True), images),
    ]
    for xla, matmul, inputs in pairs:
        params = xla.init(jax.random.key(3), inputs)
        assert jax.tree.structure(params) == jax.tree.structure(matmul.init(jax.random.key(3), inputs))
        for a, b in zip(jax.tree.leaves(xla.apply(params, inputs)), jax.tree.leaves(matmul.apply(params, inputs))):
            np.testing.assert_allclose(a, b, atol=1e-5)
    # The encoder's params are exactly nn.Conv's (names, shapes, init), so checkpoints and torch init carry over.
    conv = nn.Conv(8, (4, 4), strides=(2, 2), padding="SAME")
    ours = _conv.Conv(8, (4, 4), strides=(2, 2), padding="SAME", matmul=True)
    x = images[..., None]
    reference = conv.init(jax.random.key(4), x)
    assert jax.tree.map(jnp.shape, reference) == jax.tree.map(jnp.shape, ours.init(jax.random.key(4), x))
    np.testing.assert_allclose(conv.apply(reference, x), ours.apply(reference, x), atol=1e-5)


def test_auto_uses_matmul_on_cpu_and_bad_names_are_refused():
    assert _conv.use_matmul("auto") == (jax.default_backend() == "cpu")
    assert _conv.use_matmul("matmul") and not _conv.use_matmul("xla")
    # The VAE's declaration of the field refuses other names before anything is built.
    config = runner.as_config({"model.conv_implementation": "im2col"}, vae_digits.get_config())
    with pytest.raises(ValueError, match="config.model.conv_implementation: unknown value 'im2col'"):
        config_schema.validate(config)
