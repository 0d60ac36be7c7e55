"""Language-model likelihoods and one generation of training: AdamW + warmup-cosine schedule, every step in lax.scan.

Minibatches walk seeded permutations of the valid (weight > 0) blocks, so a pool of n blocks is seen in epochs.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from collapse_jax.models.lm.transformer import Params, TransformerConfig, forward


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """Static optimisation settings of one generation (the peak learning rate is a per-chain knob)."""

    batch_size: int
    num_steps: int
    warmup_steps: int = 0
    # Shumailov et al. decay the cosine schedule to 1e-6.
    end_learning_rate: float = 1e-6
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    max_grad_norm: float = 1.0
    # Fewest valid blocks a pool can hold: sizes the static stack of epoch permutations.
    min_valid: int = 1
    # epochs: seeded permutations of the valid blocks (each block once per epoch; needs >= min_valid valid blocks);
    # weighted: i.i.d. draws with probability proportional to the weights (curated pools: any number of valid blocks,
    # and a down-weighted block is drawn less often).
    sampling: str = "epochs"

    @property
    def num_epochs_max(self) -> int:
        return max(1, math.ceil(self.num_steps * self.batch_size / self.min_valid))


def with_bos(tokens: jax.Array, bos_id: int) -> jax.Array:
    """Model inputs for blocks [n, L]: BOS then the block without its last token (every block token is a target)."""
    bos = jnp.full(tokens.shape[:-1] + (1,), bos_id, tokens.dtype)
    return jnp.concatenate([bos, tokens[..., :-1]], axis=-1)


def token_log_probs(params: Params, config: TransformerConfig, tokens: jax.Array, bos_id: int) -> jax.Array:
    """log p(x_t | BOS, x_<t) for every token of blocks [n, L] -> [n, L]."""
    logits = forward(params, config, with_bos(tokens, bos_id))
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]


def batched_token_log_probs(
    params: Params, config: TransformerConfig, tokens: jax.Array, bos_id: int, batch_size: int
) -> jax.Array:
    """`token_log_probs` in sequential chunks of batch_size blocks (bounded activation memory); [n, L]."""
    count = tokens.shape[0]
    padded = -(-count // batch_size) * batch_size
    chunks = jnp.pad(tokens, ((0, padded - count), (0, 0))).reshape(-1, batch_size, tokens.shape[1])
    scores = jax.lax.map(lambda chunk: token_log_probs(params, config, chunk, bos_id), chunks)
    return scores.reshape(padded, tokens.shape[1])[:count]


def cosine_schedule(settings: TrainSettings, learning_rate: jax.Array) -> optax.Schedule:
    """Linear warmup 0 -> lr over W steps, then lr_end + (lr - lr_end)(1 + cos(pi (t - W) / (T - W))) / 2."""
    warmup, decay = settings.warmup_steps, max(settings.num_steps - settings.warmup_steps, 1)

    # Written out because optax's version branches on the peak value in Python, and here it is a traced knob.
    def schedule(count):
        warm = learning_rate * count / max(warmup, 1)
        progress = jnp.clip((count - warmup) / decay, 0.0, 1.0)
        end = settings.end_learning_rate
        cosine = end + (learning_rate - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        return jnp.where(count < warmup, warm, cosine)

    return schedule


def make_optimizer(settings: TrainSettings, learning_rate: jax.Array) -> optax.GradientTransformation:
    """Clip to max_grad_norm, then AdamW (Loshchilov & Hutter 2019) on the warmup-cosine schedule."""
    schedule = cosine_schedule(settings, learning_rate)
    adamw = optax.adamw(schedule, b1=settings.beta1, b2=settings.beta2, weight_decay=settings.weight_decay)
    return optax.chain(optax.clip_by_global_norm(settings.max_grad_norm), adamw)


def weighted_batch_indices(key: jax.Array, weights: jax.Array, settings: TrainSettings) -> jax.Array:
    """Block indices [num_steps, batch] drawn i.i.d. with P(i) = w_i / sum w, by inverse CDF over the cumulative
    weights: O(pool + draws log pool) memory and time, where a Gumbel-max draw would need [draws, pool]."""
    cumulative = jnp.cumsum(weights)
    targets = jax.random.uniform(key, (settings.num_steps, settings.batch_size)) * cumulative[-1]
    return jnp.minimum(jnp.searchsorted(cumulative, targets, side="right"), weights.shape[0] - 1)


def batch_indices(key: jax.Array, weights: jax.Array, settings: TrainSettings) -> jax.Array:
    """Block indices [num_steps, batch]: epoch e is a seeded permutation of the valid blocks, read in order."""
    if settings.sampling == "weighted":
        return weighted_batch_indices(key, weights, settings)
    # Each slot's sort keys depend on its index only, so padding the pool (a larger accumulate capacity after a
    # resume that extends num_generations) leaves the order of the valid blocks, and every batch, unchanged.
    slot_keys = jax.vmap(lambda slot: jax.random.fold_in(key, slot))(jnp.arange(weights.shape[0]))
    uniforms = jax.vmap(lambda slot_key: jax.random.uniform(slot_key, (settings.num_epochs_max,)), out_axes=1)(
        slot_keys
    )
    # Invalid slots sort after every valid one, so the first n_valid entries of each row are a permutation of them.
    permutations = jnp.argsort(jnp.where(weights > 0, uniforms, 2.0), axis=-1)
    num_valid = jnp.maximum(jnp.sum(weights > 0), 1)
    position = jnp.arange(settings.num_steps * settings.batch_size).reshape(settings.num_steps, settings.batch_size)
    epoch = jnp.minimum(position // num_valid, settings.num_epochs_max - 1)
    return permutations[epoch, position % num_valid]


def train(
    key: jax.Array,
    params: Params,
    config: TransformerConfig,
    settings: TrainSettings,
    blocks: jax.Array,
    weights: jax.Array,
    learning_rate: jax.Array,
    bos_id: int,
) -> tuple[Params, jax.Array]:
    """Minimise mean next-token cross-entropy over the weighted blocks; returns params and the per-step losses."""
    optimizer = make_optimizer(settings, learning_rate)

    def loss_fn(params, batch):
        return -jnp.mean(token_log_probs(params, config, batch, bos_id))

    def step(carry, indices):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, blocks[indices])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    indices = batch_indices(key, weights, settings)
    carry = (params, optimizer.init(params))
    (trained, _), losses = jax.lax.scan(step, carry, indices)
    # A pool with no valid block (every candidate filtered, no real data) leaves the model as it was (the losses are
    # then those of the discarded updates; NaN would flag the chain as failed).
    has_data = jnp.any(weights > 0)
    return jax.tree.map(lambda new, old: jnp.where(has_data, new, old), trained, params), losses
