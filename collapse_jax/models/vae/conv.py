"""2-D convolutions for the image models: XLA's conv, or the same correlation as strided slices and one matmul.

XLA:CPU runs convolution *gradients* 25-50x slower inside a while loop (lax.scan) than outside (jax-ml/jax#12868); the
VAE and the feature classifier train inside scans, so on CPU they use the slices-and-matmul form (no conv op at all).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
IMPLEMENTATIONS = ("auto", "xla", "matmul")


def use_matmul(implementation: str) -> bool:
    """auto: matmul on CPU (the loop penalty), XLA's conv on accelerators (cuDNN / TPU convs are fast in loops)."""
    return implementation == "matmul" or (implementation == "auto" and jax.default_backend() == "cpu")


def correlate(inputs: jax.Array, kernel: jax.Array, strides: tuple[int, int], padding, matmul: bool) -> jax.Array:
    """lax.conv_general_dilated(inputs [B, H, W, C], kernel [kh, kw, C, F]) with NHWC / HWIO layouts.

    matmul form: y[b, m, l] = sum_{i, j, c} x_pad[b, s_h m + i, s_w l + j, c] K[i, j, c] = patches @ K.reshape(-1, F),
    patches = the kh x kw strided slices of the padded input concatenated on channels in (i, j, c) order (K's HWIO
    reshape order). Its gradient is slices' transposes (pads, adds) and matmuls.
    """
    if not matmul:
        return jax.lax.conv_general_dilated(inputs, kernel, strides, padding, dimension_numbers=DIMENSIONS)
    kh, kw, channels, features = kernel.shape
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(inputs.shape[1:3], (kh, kw), strides, padding)
    padded = jnp.pad(inputs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    out_h = (padded.shape[1] - kh) // strides[0] + 1
    out_w = (padded.shape[2] - kw) // strides[1] + 1
    slices = [
        padded[:, i : i + strides[0] * (out_h - 1) + 1 : strides[0], j : j + strides[1] * (out_w - 1) + 1 : strides[1]]
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(slices, axis=-1) @ kernel.reshape(kh * kw * channels, features)


class Conv(nn.Module):
    """Flax's nn.Conv(features, kernel_size, strides, padding) with the same params ('kernel' HWIO, 'bias')."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    matmul: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        shape = (*self.kernel_size, inputs.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return correlate(inputs, kernel, self.strides, self.padding, self.matmul) + bias
