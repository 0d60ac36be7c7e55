"""Flax (linen, used as pure functions) networks of the VAE family: conv encoder/decoder, ELBO, feature classifier.

Defaults follow Shumailov et al. 2024's MNIST VAE: conv 64 and 128 (kernel 4, stride 2), latent 20, Bernoulli decoder.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from collapse_jax.models.vae import image_metrics
from collapse_jax.models.vae.conv import Conv, correlate

PyTree = object


class Encoder(nn.Module):
    """q(z | x) = N(mean, diag exp(log_variance)) from a [B, H, W] image batch in [0, 1]."""

    channels: tuple[int, ...]
    latent_dim: int
    matmul: bool = False  # convolutions as slices + matmul (_conv.py: XLA:CPU's conv gradients are slow in loops)

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = images[..., None]
        for index, width in enumerate(self.channels):
            # SAME padding with kernel 4 stride 2 halves each side exactly, like torch's padding=1 on 28 -> 14 -> 7.
            conv = Conv(width, (4, 4), strides=(2, 2), padding="SAME", matmul=self.matmul, name=f"Conv_{index}")
            hidden = nn.relu(conv(hidden))
        hidden = hidden.reshape(hidden.shape[0], -1)
        return nn.Dense(self.latent_dim, name="mean")(hidden), nn.Dense(self.latent_dim, name="log_variance")(hidden)


class ConvTranspose2x(nn.Module):
    """Flax's ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME") as one stride-1 conv (same params).

    The transposed conv is a correlation of the 2x-dilated input padded by 2 with the 4x4 kernel K, so output pixel
    (2m + r, 2l + s) only meets the taps K[r::2, s::2]: y[2m + r] = x[m + r - 1] K[r] + x[m + r] K[r + 2] per axis.
    All four phases are one 2x2 VALID conv of x padded by 1 (4 x features outputs), then interleaved. Same values as
    Flax's (tested); XLA:CPU runs its gradient 3.6x faster than the lhs-dilated conv's (measured at 7x7x128 -> 64).
    """

    features: int
    matmul: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        batch, height, width, channels = inputs.shape
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        phase_kernels = jnp.stack([kernel[r::2, s::2] for r in (0, 1) for s in (0, 1)], axis=-2)
        padded = jnp.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)))
        phase_kernels = phase_kernels.reshape(2, 2, channels, 4 * self.features)
        out = correlate(padded, phase_kernels, (1, 1), "VALID", self.matmul)
        out = out.reshape(batch, height + 1, width + 1, 4, self.features)
        phases = jnp.stack(
            [out[:, r : r + height, s : s + width, 2 * r + s] for r in (0, 1) for s in (0, 1)], axis=3
        ).reshape(batch, height, width, 2, 2, self.features)
        return phases.transpose(0, 1, 3, 2, 4, 5).reshape(batch, 2 * height, 2 * width, self.features) + bias


class Decoder(nn.Module):
    """Bernoulli logits [B, H, W] of p(x | z): a dense layer, then the encoder's convolutions mirrored (transposed)."""

    channels: tuple[int, ...]
    image_shape: tuple[int, int]
    matmul: bool = False

    @nn.compact
    def __call__(self, latents: jax.Array) -> jax.Array:
        factor = 2 ** len(self.channels)
        height, width = self.image_shape[0] // factor, self.image_shape[1] // factor
        hidden = nn.relu(nn.Dense(height * width * self.channels[-1])(latents))
        hidden = hidden.reshape(latents.shape[0], height, width, self.channels[-1])
        # Named like Flax's auto-names so the params tree (and torch_default_init's transposed fan-in) is unchanged.
        for index, features in enumerate(reversed(self.channels[:-1])):
            hidden = nn.relu(ConvTranspose2x(features, self.matmul, name=f"ConvTranspose_{index}")(hidden))
        logits = ConvTranspose2x(1, self.matmul, name=f"ConvTranspose_{len(self.channels) - 1}")(hidden)
        return logits[..., 0]


def negative_elbo_given_noise(
    encoder: Encoder, decoder: Decoder, networks: PyTree, images: jax.Array, noise: jax.Array, kl_weight: jax.Array
) -> jax.Array:
    """Per-image BCE(sum) + beta * KL at z = mu + sigma * noise (Kingma & Welling 2014; Higgins et al. 2017 for beta).

    BCE = -sum_p [x_p log sigmoid(l_p) + (1 - x_p) log(1 - sigmoid(l_p))] = sum_p softplus(l_p) - x_p l_p;
    KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2) (analytic, no sampling).
    With beta = 1 this is minus the one-sample ELBO, a lower bound on log p(x) in expectation over the noise.
    """
    mean, log_variance = encoder.apply(networks["encoder"], images)
    latents = mean + jnp.exp(0.5 * log_variance) * noise
    logits = decoder.apply(networks["decoder"], latents)
    reconstruction = jnp.sum(jax.nn.softplus(logits) - images * logits, axis=(1, 2))
    kl = -0.5 * jnp.sum(1.0 + log_variance - mean**2 - jnp.exp(log_variance), axis=1)
    return reconstruction + kl_weight * kl


def negative_elbo(
    encoder: Encoder, decoder: Decoder, networks: PyTree, images: jax.Array, key: jax.Array, kl_weight: jax.Array
) -> jax.Array:
    """`negative_elbo_given_noise` with one reparameterized draw noise ~ N(0, I) from `key` (the training loss)."""
    noise = jax.random.normal(key, (images.shape[0], encoder.latent_dim))
    return negative_elbo_given_noise(encoder, decoder, networks, images, noise, kl_weight)


def apply_in_chunks(function: Callable[[PyTree], PyTree], inputs: PyTree, chunk: int) -> PyTree:
    """`function` over the leading axis of a pytree of arrays in chunks of `chunk` rows (bounds activation memory).

    The last chunk is zero-padded and the padding rows are dropped from the outputs.
    """
    count = jax.tree.leaves(inputs)[0].shape[0]
    chunk = min(chunk, count)
    num_chunks = -(-count // chunk)
    padding = num_chunks * chunk - count

    def split(leaf: jax.Array) -> jax.Array:
        if padding:
            leaf = jnp.concatenate([leaf, jnp.zeros((padding, *leaf.shape[1:]), leaf.dtype)])
        return leaf.reshape(num_chunks, chunk, *leaf.shape[1:])

    outputs = jax.lax.map(function, jax.tree.map(split, inputs))
    return jax.tree.map(lambda leaf: leaf.reshape(num_chunks * chunk, *leaf.shape[2:])[:count], outputs)


def epoch_batches(key: jax.Array, weights: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """One epoch over the weighted pool: indices [steps, B] and their 0/1 weights, valid points first in random order.

    The pool has a static size P but only sum(weights) valid points; invalid ones sort last, so every valid point is
    seen exactly once and trailing all-invalid batches carry zero weight (the caller skips their update).
    """
    size = weights.shape[0]
    steps = -(-size // batch_size)
    order = jnp.argsort(jax.random.uniform(key, (size,)) + 2.0 * (weights <= 0))
    padding = steps * batch_size - size
    order = jnp.concatenate([order, jnp.zeros((padding,), order.dtype)])
    mask = jnp.concatenate([weights[order[:size]], jnp.zeros((padding,), weights.dtype)])
    return order.reshape(steps, batch_size), mask.reshape(steps, batch_size)


def torch_default_init(key: jax.Array, shapes: PyTree) -> PyTree:
    """torch's default layer init for a Flax params tree of shapes, in one random draw.

    torch.nn.Conv2d / Linear / ConvTranspose2d reset_parameters: weight = kaiming_uniform(a = sqrt(5)) and bias, both
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = k * k * in (Linear: in); torch's transposed conv takes k * k * out
    (its weight is [in, out, k, k] and fan_in reads axis 1). Shumailov's notebook uses these defaults. One draw for all
    layers because XLA:CPU compiles every threefry call on its own (measured: the fit's compile 30% shorter).
    """

    def bounds(tree: dict, transposed: bool = False) -> dict:
        if "kernel" not in tree:
            return {name: bounds(sub, name.startswith("ConvTranspose")) for name, sub in tree.items()}
        kernel = tree["kernel"].shape
        fan_in = int(np.prod(kernel[:-2])) * kernel[-1] if transposed else int(np.prod(kernel[:-1]))
        return {name: 1.0 / np.sqrt(fan_in) for name in tree}  # kernel and bias share the bound

    leaves, structure = jax.tree.flatten(shapes)
    bound_leaves = jax.tree.leaves(bounds(shapes))
    sizes = [int(np.prod(leaf.shape)) for leaf in leaves]
    draws = jax.random.uniform(key, (sum(sizes),), minval=-1.0, maxval=1.0)
    offsets = np.cumsum([0, *sizes])
    values = [
        bound * draws[start:end].reshape(leaf.shape)
        for leaf, bound, start, end in zip(leaves, bound_leaves, offsets[:-1], offsets[1:])
    ]
    return jax.tree.unflatten(structure, values)


def adam_l2(learning_rate: jax.Array, weight_decay: float) -> optax.GradientTransformation:
    """torch.optim.Adam(lr, weight_decay): the decay is an L2 term added to the gradient before Adam (not AdamW)."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_adam(), optax.scale(-learning_rate))


class FeatureClassifier(nn.Module):
    """Small LeNet-style classifier; its last hidden layer is the feature space of the Frechet distance and P/R."""

    channels: tuple[int, ...] = (32, 64)
    feature_dim: int = 128
    num_classes: int = 10
    matmul: bool = False

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = images[..., None]
        for index, width in enumerate(self.channels):
            conv = Conv(width, (3, 3), strides=(2, 2), padding="SAME", matmul=self.matmul, name=f"Conv_{index}")
            hidden = nn.relu(conv(hidden))
        features = nn.relu(nn.Dense(self.feature_dim)(hidden.reshape(hidden.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features


def train_classifier(
    classifier: FeatureClassifier, images: np.ndarray, labels: np.ndarray, seed: int, epochs: int, batch_size: int
) -> PyTree:
    """Fit the classifier by Adam on cross-entropy, all epochs in one compiled scan (runs once, on the host)."""
    images = jnp.asarray(images, jnp.float32) / 255.0
    labels = jnp.asarray(labels, jnp.int32)
    key = jax.random.PRNGKey(seed)
    params = classifier.init(key, images[:1])
    optimizer = optax.adam(1e-3)
    steps = len(images) // batch_size  # drop the remainder: a static batch shape, every image seen most epochs

    def step(state, batch):
        params, opt_state = state

        def loss(p):
            logits, _ = classifier.apply(p, images[batch])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels[batch]).mean()

        updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    @jax.jit
    def fit(params, key):
        keys = jax.random.split(key, epochs)
        batches = jax.vmap(lambda k: jax.random.permutation(k, len(images))[: steps * batch_size])(keys)
        state, _ = jax.lax.scan(step, (params, optimizer.init(params)), batches.reshape(-1, batch_size))
        return state[0]

    return fit(params, jax.random.fold_in(key, 1))


def classifier_reference(
    classifier: FeatureClassifier,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    seed: int,
    epochs: int,
    precision_recall_size: int,
    precision_recall_k: int,
    chunk_size: int,
    family: str,
) -> dict:
    """The real side of the image metrics (host, once): the classifier trained on the uint8 training split, the test
    images in [0, 1] and their features' statistics (image_metrics.real_feature_statistics)."""
    classifier_params = train_classifier(classifier, train_images, train_labels, seed, epochs, 64)
    test = jnp.asarray(test_images, jnp.float32) / 255.0

    def outputs(params, images):
        return apply_in_chunks(lambda x: classifier.apply(params, x), images, chunk_size)

    logits, features = jax.jit(outputs)(classifier_params, test)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(test_labels)))
    logging.info("%s reference: feature classifier test accuracy %.3f", family, accuracy)
    statistics = image_metrics.real_feature_statistics(np.asarray(features), precision_recall_size, precision_recall_k)
    return {"classifier": classifier_params, "test_images": test, **jax.tree.map(jnp.asarray, statistics)}
