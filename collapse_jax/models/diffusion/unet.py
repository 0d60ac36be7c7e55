"""A small convolutional U-Net for epsilon-prediction on images (Ho et al. 2020's DDPM net, cut down): Flax modules used
as pure functions, flat [n, H*W] data in, flat epsilon-hat out, conditioned on t by a sinusoidal embedding.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from collapse_jax.models.diffusion.nets import Net, time_embedding
from collapse_jax.models.vae.conv import Conv


def channels_for(width: int, depth: int) -> tuple[int, ...]:
    """Channels per resolution level: width at full resolution, doubled at each of the depth - 1 halvings."""
    return tuple(width * 2**level for level in range(depth))


class ResidualBlock(nn.Module):
    """h + time: norm, swish, 3x3 conv, + Dense(embedding), norm, swish, 3x3 conv; a 1x1 conv on the skip when the
    channel count changes (DDPM's ResnetBlock without dropout)."""

    features: int
    groups: int  # GroupNorm groups (0: no normalization)
    matmul: bool

    @nn.compact
    def __call__(self, hidden: jax.Array, embedding: jax.Array) -> jax.Array:
        norm = (lambda x: nn.GroupNorm(self.groups)(x)) if self.groups else (lambda x: x)
        out = Conv(self.features, (3, 3), matmul=self.matmul)(nn.swish(norm(hidden)))
        out = out + nn.Dense(self.features)(nn.swish(embedding))[:, None, None, :]
        out = Conv(self.features, (3, 3), matmul=self.matmul)(nn.swish(norm(out)))
        if hidden.shape[-1] != self.features:
            hidden = Conv(self.features, (1, 1), matmul=self.matmul)(hidden)
        return hidden + out


class UNet(nn.Module):
    """epsilon-hat [B, H, W] from x_t [B, H, W] and t [B]: one residual block per level on the way down (2x2 average
    pooling between levels), one in the middle, one per level on the way up on [h, the level's skip] (nearest 2x
    upsampling between levels), GroupNorm (`groups` > 0) and swish, a 3x3 output conv."""

    channels: tuple[int, ...]
    groups: int = 8
    matmul: bool = False

    @nn.compact
    def __call__(self, images: jax.Array, t: jax.Array) -> jax.Array:
        width = self.channels[0]
        embedding = time_embedding(jnp.broadcast_to(t, images.shape[:1]), width)
        embedding = nn.Dense(4 * width)(nn.swish(nn.Dense(4 * width)(embedding)))
        hidden = Conv(width, (3, 3), matmul=self.matmul)(images[..., None])
        skips = []
        for level, features in enumerate(self.channels):
            hidden = ResidualBlock(features, self.groups, self.matmul)(hidden, embedding)
            skips.append(hidden)
            if level < len(self.channels) - 1:
                hidden = nn.avg_pool(hidden, (2, 2), strides=(2, 2))
        hidden = ResidualBlock(self.channels[-1], self.groups, self.matmul)(hidden, embedding)
        for level in reversed(range(len(self.channels))):
            hidden = jnp.concatenate([hidden, skips[level]], axis=-1)
            hidden = ResidualBlock(self.channels[level], self.groups, self.matmul)(hidden, embedding)
            if level > 0:
                hidden = jnp.repeat(jnp.repeat(hidden, 2, axis=1), 2, axis=2)
        if self.groups:
            hidden = nn.GroupNorm(self.groups)(hidden)
        return Conv(1, (3, 3), matmul=self.matmul, name="out")(nn.swish(hidden))[..., 0]


def parameter_count(channels: tuple[int, ...], groups: int) -> int:
    """The U-Net's parameters in closed form, E = 4 c_0 the embedding width, n = 2 per normalized channel (scale and
    bias): time MLP c_0 E + E + E^2 + E; input conv 9 c_0 + c_0; a block a -> b: 9ab + b + Eb + b + 9b^2 + b
    (+ ab + b when a != b) + n(a + b); output n c_0 + 9 c_0 + 1."""
    width, embed = channels[0], 4 * channels[0]
    norm = 2 if groups else 0

    def block(a: int, b: int) -> int:
        return 9 * a * b + b + embed * b + b + 9 * b * b + b + (a * b + b if a != b else 0) + norm * (a + b)

    total = width * embed + embed + embed * embed + embed + 9 * width + width
    previous = width
    for features in channels:  # down
        total += block(previous, features)
        previous = features
    total += block(previous, previous)  # middle
    for level in reversed(range(len(channels))):  # up: input = current channels + the level's skip
        total += block(previous + channels[level], channels[level])
        previous = channels[level]
    return total + norm * width + 9 * width + 1


def check_image_shape(image_shape: tuple[int, int], depth: int) -> None:
    """One-line ValueError unless both sides halve depth - 1 times exactly (the skips must match on the way up)."""
    factor = 2 ** (depth - 1)
    if image_shape[0] % factor or image_shape[1] % factor:
        raise ValueError(
            f"config.model.depth: {depth} U-Net levels halve the image {depth - 1} times and need sides divisible by "
            f"{factor}; the images are {image_shape[0]}x{image_shape[1]}"
        )


def make_unet(image_shape: tuple[int, int], channels: tuple[int, ...], groups: int, matmul: bool) -> Net:
    """init(key) -> params and apply(params, x [n, H*W], t [n] or scalar) -> epsilon-hat [n, H*W], pure functions."""
    check_image_shape(image_shape, len(channels))
    if groups and channels[0] % groups:
        raise ValueError(f"config.model.norm_groups: {groups} GroupNorm groups must divide model.width = {channels[0]}")
    net = UNet(channels=tuple(channels), groups=groups, matmul=matmul)
    height, width = image_shape

    def init(key: jax.Array) -> dict:
        params = net.init(key, jnp.zeros((1, height, width), jnp.float32), jnp.zeros((1,), jnp.float32))
        # A zero output conv (Nichol & Dhariwal's zero_module): training starts at the trivial predictor's loss d.
        params["params"]["out"] = jax.tree.map(jnp.zeros_like, params["params"]["out"])
        return params

    def apply(params: dict, x: jax.Array, t: jax.Array) -> jax.Array:
        out = net.apply(params, x.reshape(x.shape[0], height, width), jnp.broadcast_to(t, x.shape[:1]))
        return out.reshape(x.shape[0], height * width)

    return Net(init=init, apply=apply)


def build_unet(settings: Any) -> Net:
    """family.NETS["unet"]: the U-Net of settings.width (channels at full resolution, doubled per level) and
    settings.depth (levels) on settings.image_truth's images (its GroupNorm groups and conv implementation)."""
    images = settings.image_truth
    return make_unet(
        images.image_shape, channels_for(settings.width, settings.depth), images.norm_groups, images.matmul
    )
