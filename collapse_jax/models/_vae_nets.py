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

PyTree = object


class Encoder(nn.Module):
    """q(z | x) = N(mean, diag exp(log_variance)) from a [B, H, W] image batch in [0, 1]."""

    channels: tuple[int, ...]
    latent_dim: int

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = images[..., None]
        for width in self.channels:
            # SAME padding with kernel 4 stride 2 halves each side exactly, like torch's padding=1 on 28 -> 14 -> 7.
            hidden = nn.relu(nn.Conv(width, (4, 4), strides=(2, 2), padding="SAME")(hidden))
        hidden = hidden.reshape(hidden.shape[0], -1)
        return nn.Dense(self.latent_dim, name="mean")(hidden), nn.Dense(self.latent_dim, name="log_variance")(hidden)


class Decoder(nn.Module):
    """Bernoulli logits [B, H, W] of p(x | z): a dense layer, then the encoder's convolutions mirrored (transposed)."""

    channels: tuple[int, ...]
    image_shape: tuple[int, int]

    @nn.compact
    def __call__(self, latents: jax.Array) -> jax.Array:
        factor = 2 ** len(self.channels)
        height, width = self.image_shape[0] // factor, self.image_shape[1] // factor
        hidden = nn.relu(nn.Dense(height * width * self.channels[-1])(latents))
        hidden = hidden.reshape(latents.shape[0], height, width, self.channels[-1])
        for features in reversed(self.channels[:-1]):
            hidden = nn.relu(nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")(hidden))
        logits = nn.ConvTranspose(1, (4, 4), strides=(2, 2), padding="SAME")(hidden)
        return logits[..., 0]


def negative_elbo(
    encoder: Encoder, decoder: Decoder, networks: PyTree, images: jax.Array, key: jax.Array, kl_weight: jax.Array
) -> jax.Array:
    """Per-image BCE(sum) + beta * KL, one reparameterized draw (Kingma & Welling 2014; Higgins et al. 2017 for beta).

    BCE = -sum_p [x_p log sigmoid(l_p) + (1 - x_p) log(1 - sigmoid(l_p))] = sum_p softplus(l_p) - x_p l_p;
    KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    mean, log_variance = encoder.apply(networks["encoder"], images)
    latents = mean + jnp.exp(0.5 * log_variance) * jax.random.normal(key, mean.shape)
    logits = decoder.apply(networks["decoder"], latents)
    reconstruction = jnp.sum(jax.nn.softplus(logits) - images * logits, axis=(1, 2))
    kl = -0.5 * jnp.sum(1.0 + log_variance - mean**2 - jnp.exp(log_variance), axis=1)
    return reconstruction + kl_weight * kl


def apply_in_chunks(function: Callable[[jax.Array], PyTree], inputs: jax.Array, chunk: int) -> PyTree:
    """`function` over the leading axis in chunks of `chunk` rows (bounds activation memory; pads the last chunk)."""
    count = inputs.shape[0]
    chunk = min(chunk, count)
    num_chunks = -(-count // chunk)
    padding = num_chunks * chunk - count
    padded = jnp.concatenate([inputs, jnp.zeros((padding, *inputs.shape[1:]), inputs.dtype)]) if padding else inputs
    outputs = jax.lax.map(function, padded.reshape(num_chunks, chunk, *inputs.shape[1:]))
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

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = images[..., None]
        for width in self.channels:
            hidden = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME")(hidden))
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
