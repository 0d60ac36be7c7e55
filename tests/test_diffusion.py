"""Diffusion family: the exact denoiser against brute force, samplers landing on training points, the truth
denoiser's stationarity and its discretization order, the forward-noised variance recursion, conformance, invariances.
"""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax import testing
from collapse_jax.host import runner, sweep
from collapse_jax.models import base, contract
from collapse_jax.models.diffusion import nets, sampling, training
from collapse_jax.store import workdir_io
from experiments.configs import diffusion_oracle, diffusion_toy

KNOBS = {"seed": 0, "real_fraction": 0.0, "sampling_bias": 1.0, "truncation": 0.0}


def small_config(**overrides):
    settings = {
        "seeds": 4,
        "num_generations": 3,
        "chunk_generations": 1,
        "checkpoint_every": 1,
        "chain_block": 4,
        "samples_per_generation": 16,
        "regime.name": "replace",
        "model.truncation": 0.0,
        "model.sampling_steps": 8,
        "make_plots": False,
    }
    return runner.as_config({**settings, **overrides}, diffusion_oracle.get_config())


def fitted(model, points, weights):
    return model.fit(jax.random.key(0), jnp.asarray(points), jnp.asarray(weights), KNOBS, None)


def test_exact_denoiser_equals_the_brute_force_posterior_mean_with_weights_and_masked_slots():
    """E[x0 | x_t] = sum_i w_i N(x_t; alpha x_i, sigma^2) x_i / sum_i w_i N(...), summed in float64 point by point."""
    rng = np.random.default_rng(0)
    points, queries = rng.normal(size=(40, 2)), rng.normal(size=(25, 2))
    weights = rng.uniform(0.5, 2.0, size=40) * (np.arange(40) < 30)  # the last 10 slots are masked out
    junk = np.where(weights[:, None] > 0, points, 1e3)  # masked slots hold junk: it must not matter
    for t in (0.05, 0.3, 0.7, 1.0):
        alpha, sigma = (float(v) for v in sampling.alpha_sigma("cosine", t))
        ours = sampling.exact_denoise(
            jnp.asarray(queries, jnp.float32), alpha, sigma, jnp.asarray(junk, jnp.float32), jnp.asarray(weights)
        )
        expected = []
        for x in queries:
            log_kernel = np.array([-np.sum((x - alpha * p) ** 2) / (2 * sigma**2) for p in points[:30]])
            kernel = weights[:30] * np.exp(log_kernel - log_kernel.max())
            expected.append(kernel @ points[:30] / kernel.sum())
        # float32 kernels: relative weight errors ~1e-7 * |logit| (<= ~1e-4 at t = 0.05) on points of norm ~2.
        np.testing.assert_allclose(np.asarray(ours), np.array(expected), atol=5e-4, err_msg=f"t = {t}")


@pytest.mark.parametrize("sampler", ["ancestral", "ode"])
def test_at_t0_zero_every_sample_lands_on_a_training_point_in_proportion_to_its_weight(sampler):
    """At t -> 0 the exact denoiser's posterior is one-hot on the nearest training point: the output is a training
    point. 64 steps end at t1 = 1/64, sigma = 0.034; neighbours 1 apart then differ by ~1/(2 sigma^2) = 430 nats."""
    model = base.make_model(small_config(**{"model.sampler": sampler, "model.sampling_steps": 64}))
    grid = np.stack(np.meshgrid(np.arange(3.0), np.arange(3.0)), -1).reshape(-1, 2) - 1.0
    points = np.concatenate([grid, np.full((7, 2), 50.0)]).astype(np.float32)  # 16 slots: 9 points, 7 masked
    weights = np.array([2.0] + [1.0] * 8 + [0.0] * 7, np.float32)
    params = fitted(model, points, weights)
    samples = np.asarray(jax.jit(lambda p: model.sample(jax.random.key(3), p, 10_000, KNOBS))(params))
    distances = np.sqrt(np.sum((samples[:, None] - points[None]) ** 2, axis=-1))
    assert distances.min(axis=1).max() < 1e-5  # measured 0.0 for both samplers
    shares = np.bincount(distances.argmin(axis=1), minlength=16) / len(samples)
    # The sampler targets weights / 10; the binomial standard error over 10k samples is <= 0.004, so 0.02 is 5 SE
    # (the 64-step discretization moved no share by more than 0.006 in the measurement).
    np.testing.assert_allclose(shares, np.concatenate([weights[:9] / 10.0, np.zeros(7)]), atol=0.02)


def test_final_denoise_pulls_noised_samples_back_onto_the_training_points():
    """At t0 = 0.03 (alpha = 0.998, sigma = 0.058) x_t0 is alpha x_i + sigma z: its distance to x_i is Rayleigh with
    median sigma sqrt(2 ln 2) = 0.068. D(x_t0, t0) weighs a neighbour 1 away by exp(-(1 - 2 sigma z) / 2 sigma^2)
    ~ e^-150: the denoised output is the training point itself."""
    grid = np.stack(np.meshgrid(np.arange(3.0), np.arange(3.0)), -1).reshape(-1, 2).astype(np.float32)
    knobs = {**KNOBS, "truncation": 0.03}
    distances = {}
    for final in (False, True):
        overrides = {"samples_per_generation": 9, "model.final_denoise": final, "model.sampling_steps": 64}
        model = base.make_model(small_config(**overrides))
        params = fitted(model, grid, np.ones(9, np.float32))
        samples = np.asarray(model.sample(jax.random.key(4), params, 4000, knobs))
        distances[final] = np.sqrt(np.sum((samples[:, None] - grid[None]) ** 2, axis=-1)).min(axis=1)
    # The median of 4000 Rayleigh draws has a standard error of ~1.5%; 10% leaves room for the 64-step sampler.
    np.testing.assert_allclose(np.median(distances[False]), 0.058 * np.sqrt(2 * np.log(2)), rtol=0.1)
    assert distances[True].max() < 1e-5, distances[True].max()


def _gaussian_truth_model(sampler: str, steps: int):
    overrides = {
        "model.truth": "gaussian",
        "model.dim": 1,
        "model.score": "truth",
        "model.sampler": sampler,
        "model.sampling_steps": steps,
    }
    return base.make_model(small_config(**overrides))


def test_ode_with_the_gaussian_truth_denoiser_contracts_by_the_product_of_step_cosines():
    """Truth N(0, 1): alpha^2 + sigma^2 = 1 makes every marginal N(0, 1), so the exact flow is the identity; a DDIM
    step with the exact denoiser D = alpha x is x_s = (alpha_s alpha_t + sigma_s sigma_t) x_t = cos(theta_t - theta_s)
    x_t (alpha = cos theta). The output is prod_i cos(dtheta_i) x_1, variance 1 - sum_i dtheta_i^2 + ...: first order
    in 1/N, N (1 - var) -> int_0^1 theta'(t)^2 dt >= (pi/2)^2 (theta runs from 0 to pi/2). Measured N (1 - var) = 2.14,
    2.38, 2.45, 2.49 at N = 8, 32, 128, 1024."""
    outputs = {}
    for steps in (8, 32, 128):
        model = _gaussian_truth_model("ode", steps)
        outputs[steps] = np.asarray(model.sample(jax.random.key(5), model.init(None, KNOBS), 1000, KNOBS))[:, 0]
        theta = np.arccos(np.asarray(sampling.alpha_sigma("cosine", np.linspace(0.0, 1.0, steps + 1))[0], np.float64))
        outputs[steps] = (outputs[steps], np.prod(np.cos(np.diff(theta))))
    # The same key draws the same x_1 at every N, so output_N / output_128 is the ratio of the two products exactly
    # (float32 round-off: ~1e-6 per step).
    for steps in (8, 32):
        ratio = outputs[steps][0] / outputs[128][0]
        np.testing.assert_allclose(ratio, outputs[steps][1] / outputs[128][1], rtol=2e-4)
    errors = {steps: 1.0 - product**2 for steps, (_, product) in outputs.items()}
    # First order: N x error stays within 2.0 ... 2.6 while N grows 16-fold (a second-order error would fall 16x).
    assert all(2.0 < steps * errors[steps] < 2.6 for steps in errors), errors


def test_ancestral_with_the_gaussian_truth_denoiser_is_stationary_up_to_a_first_order_discretization():
    """DDPM with the exact denoiser drops Var[x0 | x_t] from each step's variance, so the output variance falls short
    of the truth's 1 by O(1/N). Measured on 400k samples: 1 - var = 0.374, 0.124, 0.067 at N = 8, 32, 64 (order ~0.9).
    200k samples: the variance's standard error is sqrt(2 / 2e5) = 0.003."""
    shortfall = {}
    for steps in (8, 64):
        model = _gaussian_truth_model("ancestral", steps)
        samples = np.asarray(model.sample(jax.random.key(6), model.init(None, KNOBS), 200_000, KNOBS), np.float64)
        shortfall[steps] = 1.0 - samples.var()
    assert 0.33 < shortfall[8] < 0.42 and 0.05 < shortfall[64] < 0.085, shortfall
    order = np.log2(shortfall[8] / shortfall[64]) / 3.0
    assert 0.7 < order < 1.1, order


def test_mixture_truth_denoiser_samples_the_mixture():
    """score = truth on the 8-mode mixture with 256 ancestral steps: every mode covered, the in-mode share near the
    mixture's own 98.9% (3 mode_std in 2-D), and the energy distance near that of a truth sample of the same size."""
    config = small_config(**{"model.score": "truth", "model.sampling_steps": 256, "samples_per_generation": 1000})
    model = base.make_model(config)
    params = model.init(None, KNOBS)
    samples = model.sample(jax.random.key(7), params, 1000, KNOBS)
    reference = model.reference()
    metrics = model.evaluate(fitted(model, samples, jnp.ones(1000)), samples, reference, KNOBS)
    assert float(metrics["mode_coverage"]) == 1.0
    # 1000 samples: the share's standard error is 0.003; the discretization's narrowing only raises it.
    assert float(metrics["high_quality_share"]) > 0.97
    # 1000 truth draws give energy_distance -3e-4 +- 1.1e-3 (test below); 0.01 allows the discretization.
    assert abs(float(metrics["energy_distance"])) < 0.01, metrics


def test_metrics_of_fresh_truth_draws_and_of_the_training_set_itself():
    """Fresh truth draws (1000 per chain, M = 256 training points, 16 chains): energy distance ~0 (unbiased U-form),
    high_quality_share = P(|N(0, I_2)| <= 3) = 1 - exp(-4.5) = 0.9889, every mode covered, and memorized_share near
    the Poisson estimate: a point's nearest training point lies within r with probability 1 - exp(-lambda pi r^2),
    the median m has lambda pi m^2 = ln 2, so r = m / 4 gives 1 - exp(-ln 2 / 16) = 0.042 (measured 0.049: clusters
    are not uniform). The training set scored against itself is memorized and covered in full."""
    model = base.make_model(small_config(**{"samples_per_generation": 256}))
    reference = model.reference()

    def scores(key, own):
        params = model.fit(None, model.real_data(key, KNOBS), jnp.ones(256), KNOBS, None)
        samples = model.real_data(key, KNOBS) if own else model.sample_truth(jax.random.fold_in(key, 1), 1000, KNOBS)
        return model.evaluate(params, samples, reference, KNOBS)

    keys = jax.random.split(jax.random.key(0), 16)
    fresh = {name: float(np.mean(value)) for name, value in jax.jit(jax.vmap(lambda k: scores(k, False)))(keys).items()}
    # Per-chain spreads measured over 64 chains: energy 1.1e-3, quality 3e-3, memorized 8e-3; means of 16 chains have
    # a quarter of that; each bound is >= 5 of those standard errors.
    assert abs(fresh["energy_distance"]) < 1.5e-3 and abs(fresh["high_quality_share"] - 0.9889) < 0.004, fresh
    assert 0.03 < fresh["memorized_share"] < 0.07 and fresh["mode_coverage"] == 1.0, fresh
    own = jax.jit(jax.vmap(lambda k: scores(k, True)))(keys[:2])
    np.testing.assert_array_equal(np.asarray(own["memorized_share"]), 1.0)
    np.testing.assert_array_equal(np.asarray(own["train_coverage"]), 1.0)


def test_replace_with_the_exact_denoiser_follows_the_forward_noised_variance_recursion():
    """Exact denoiser, t0 > 0, output x_t0: the sampler draws from the forward-noised training set
    Q = (1/M) sum_i N(alpha x_i, sigma^2) (alpha, sigma at t0), whose variance is alpha^2 S + sigma^2 with S the
    training set's biased sample variance. Under replace the next training set is M draws from Q, so
    E[S_{g+1} | S_g] = (M - 1)/M (alpha^2 S_g + sigma^2), and E[S_0] = (M - 1)/M s^2 for the N(0, s^2) truth.
    2048 chains of M = 8 at t0 = 0.3 (alpha^2 = 0.787), 512 ancestral steps (the sampler's bias: measured 0.2% at 512
    steps, 5% at 64)."""
    size, chains, generations, t0 = 8, 2048, 3, 0.3
    config = small_config(
        **{"model.truth": "gaussian", "model.dim": 1, "samples_per_generation": size, "model.sampling_steps": 512}
    )
    model = base.make_model(config)
    knobs = {**KNOBS, "truncation": t0}
    alpha, sigma = (float(v) for v in sampling.alpha_sigma("cosine", t0))

    def chain(key):
        data = model.real_data(jax.random.fold_in(key, generations), knobs)
        variances = [jnp.var(data)]
        for generation in range(generations):
            params = model.fit(key, data, jnp.ones(size), knobs, None)
            data = model.sample(jax.random.fold_in(key, generation), params, size, knobs)
            variances.append(jnp.var(data))
        return jnp.stack(variances)

    variances = np.asarray(jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(0), chains)), np.float64)
    shrink = (size - 1) / size
    conditional = variances[:, 1:] - shrink * (alpha**2 * variances[:, :-1] + sigma**2)
    standard_error = conditional.std(axis=0) / np.sqrt(chains)  # ~0.011 per generation
    # 4 standard errors of the mean over 2048 chains; the discretization bias (~0.002) is far inside.
    assert np.all(np.abs(conditional.mean(axis=0)) < 4 * standard_error + 0.003), (conditional.mean(0), standard_error)
    expected = [shrink]
    for _ in range(generations):
        expected.append(shrink * (alpha**2 * expected[-1] + sigma**2))
    unconditional_error = variances.std(axis=0) / np.sqrt(chains)
    np.testing.assert_array_less(np.abs(variances.mean(axis=0) - expected), 4 * unconditional_error + 0.003)
    # Not the noise-free law: without sigma^2 the fixed point would be 0, not sigma^2 (M-1)/M / (1 - alpha^2 (M-1)/M).
    assert variances[:, -1].mean() > 0.6


def learned_config(**overrides):
    """diffusion_toy at test size: a 16-wide MLP, 20 AdamW steps, 8 sampler steps (the kit and the invariances)."""
    settings = {
        "seeds": 2,
        "num_generations": 3,
        "chunk_generations": 1,
        "checkpoint_every": 1,
        "chain_block": 4,
        "samples_per_generation": 16,
        "regime.name": "replace",
        "regime.real_fraction": 0.0,
        "model.width": 16,
        "model.depth": 1,
        "model.train_steps": 20,
        "model.batch_size": 8,
        "model.sampling_steps": 8,
        "make_plots": False,
    }
    return runner.as_config({**settings, **overrides}, diffusion_toy.get_config())


# The learned loops below: M points per generation, G generations, chains per loop, MAD's sampling bias lambda.
LOOP_M, LOOP_G, LOOP_CHAINS, LOOP_BIAS = 128, 4, 6, 0.9
LOOPS = ("replace", "accumulate", "fresh", "mad")


@pytest.fixture(scope="module")
def learned_loops():
    """Per loop, the metrics [chains, G + 1] of a learned MLP (diffusion_toy's denoiser at 32 wide, 150 steps per
    generation from the previous weights) on the 8-mode mixture (std 0.1): replace trains on its own M samples;
    accumulate on every generation's samples plus the real data; fresh on M/2 fresh truth draws + M/2 samples;
    mad is replace sampled with lambda = 0.8 (Alemohammad et al.'s sampling bias). The regimes are written out here
    over one static pool of capacity M (G + 1) (the engine's regimes are tested elsewhere), so the 32 chains share one
    compile: 20 s on an idle core."""
    overrides = {
        "regime.name": "accumulate",
        "samples_per_generation": LOOP_M,
        "num_generations": LOOP_G,
        "model.width": 32,
        "model.depth": 2,
        "model.train_steps": 200,
        "model.batch_size": 64,
        "model.sampling_steps": 16,
    }
    model = base.make_model(learned_config(**overrides))
    capacity = model.capacity
    assert capacity == LOOP_M * (LOOP_G + 1)
    loop = np.repeat(np.arange(len(LOOPS)), LOOP_CHAINS)
    reference = model.reference()

    def chain(key, kind):
        bias = jnp.where(kind == LOOPS.index("mad"), LOOP_BIAS, 1.0)
        knobs = {**KNOBS, "sampling_bias": bias, "train_steps": 200, "learning_rate": 3e-3}
        slots = jnp.arange(capacity)
        real = model.real_data(key, knobs)
        pool = jnp.zeros((capacity, 2)).at[:LOOP_M].set(real)
        params = model.init(key, knobs)

        def generation(state, index):
            pool, params = state
            step_key = jax.random.fold_in(key, index)
            weights = (slots < LOOP_M * jnp.where(kind == LOOPS.index("accumulate"), index + 1, 1)).astype(jnp.float32)
            params = model.fit(jax.random.fold_in(step_key, 0), pool, weights, knobs, params)
            samples = model.sample(jax.random.fold_in(step_key, 1), params, LOOP_M, knobs)
            values = model.evaluate(params, samples, reference, knobs)
            fresh = model.sample_truth(jax.random.fold_in(step_key, 2), LOOP_M, knobs)
            batch = jnp.where(
                (kind == LOOPS.index("fresh")) & (jnp.arange(LOOP_M)[:, None] < LOOP_M // 2), fresh, samples
            )
            start = jnp.where(kind == LOOPS.index("accumulate"), LOOP_M * (index + 1), 0)
            pool = jax.lax.dynamic_update_slice(pool, batch, (jnp.minimum(start, capacity - LOOP_M), 0))
            return (pool, params), values

        _, values = jax.lax.scan(generation, (pool, params), jnp.arange(LOOP_G + 1))
        return {name: value.T if value.ndim == 2 else value for name, value in values.items()}

    keys = jax.random.split(jax.random.key(11), len(loop))
    values = jax.jit(jax.vmap(chain))(keys, jnp.asarray(loop))
    return {
        name: {kind: np.asarray(value)[loop == i] for i, kind in enumerate(LOOPS)} for name, value in values.items()
    }


def _mean_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean(a) - mean(b), its standard error sqrt(var_a / n_a + var_b / n_b)) over chains (Welch)."""
    return a.mean() - b.mean(), float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def test_learned_replace_drifts_while_accumulate_and_fresh_data_stay_bounded(learned_loops):
    """Bertrand et al. (ICLR 2024): retraining on one's own samples is stable when the real share is large enough;
    Gerstgrasser et al. (2024): accumulating data bounds the error. Measured, median over 6 chains, generation 0 -> 4:
    energy_distance replace 0.017 -> 0.20 [10-90%: 0.12, 0.28], accumulate 0.033 -> 0.033 [0.020, 0.069], fresh
    0.028 -> 0.052 [0.020, 0.097]; mode_coverage at generation 4, mean over chains: replace 0.85 (4 of 6 chains lost a
    mode), accumulate 1, fresh 0.98 (one chain lost one).

    Tolerances from the chain count (6 per loop; were the loops alike, their chains would be exchangeable):
    (1) every replace chain's energy distance grows from generation 0 to 4: 2^-6 = 1.6% by chance. (2) The largest
    final energy distance of the accumulate (and of the fresh) chains is below the replace chains' median: 4.8% by
    chance for 6 + 6 exchangeable chains (simulated). (3) Mode loss, a threshold with a margin of one chain: one lost
    mode of 8 in one chain of 6 moves the mean coverage by 1/48; replace's mean is below 15/16 (3 lost modes over 6
    chains), accumulate's and fresh's above it."""
    energy, coverage = learned_loops["energy_distance"], learned_loops["mode_coverage"]
    assert np.all(energy["replace"][:, -1] > energy["replace"][:, 0]), energy["replace"]
    replace_median = np.median(energy["replace"][:, -1])
    for kind in ("accumulate", "fresh"):
        assert energy[kind][:, -1].max() < replace_median, (kind, energy[kind][:, -1], replace_median)
        assert coverage[kind][:, -1].mean() > 15 / 16, (kind, coverage[kind])
    assert coverage["replace"][:, -1].mean() < 15 / 16, coverage["replace"]


def test_mad_sampling_bias_loses_modes_faster_at_no_cost_in_quality(learned_loops):
    """Alemohammad et al. (MAD, ICLR 2024): in the fully synthetic loop a sampling bias lambda < 1 keeps quality
    (precision) while diversity (recall) falls faster. Measured at lambda = 0.9, generation 4, mean over 6 chains:
    mode_coverage mad 0.58 vs replace 0.85 (difference 2.8 standard errors); high_quality_share mad 0.32 vs replace
    0.32. Quality is kept relative to the unbiased loop only: both fall from ~0.63 at generation 0 (the small MLP
    blurs the std-0.1 modes and each retraining compounds it; with a 150-step net the biased loop's quality collapsed
    to 0.02 instead, notes/diffusion.md).

    Tolerances from the chain count (Welch's standard error of a difference of two 6-chain means, ~9 degrees of
    freedom): coverage falls faster by more than 2 standard errors (one-sided p = 0.04), and quality is not below the
    unbiased loop's by more than 2 standard errors (a non-inferiority check: it fails if the biased loop's quality
    collapses)."""
    quality, coverage = learned_loops["high_quality_share"], learned_loops["mode_coverage"]
    difference, error = _mean_difference(coverage["replace"][:, -1], coverage["mad"][:, -1])
    assert difference > 2.0 * error, (difference, error, coverage)
    difference, error = _mean_difference(quality["mad"][:, -1], quality["replace"][:, -1])
    assert difference > -2.0 * error, (difference, error, quality)


def test_a_chain_stopped_short_in_a_longer_scan_equals_its_own_scan_and_equal_counts_trace_no_mask():
    """The scan runs the group's largest step count; a chain's later steps leave its state unchanged, so 5 steps in a
    scan of 9 are bit-identical to a scan of 5, and a group whose counts are all equal (min_steps = max_steps, no mask
    traced) gets the bits the masked scan gives."""
    net = nets.build_mlp(type("Settings", (), {"width": 16, "depth": 1, "dim": 2})())
    params = net.init(jax.random.key(0))
    points = jax.random.normal(jax.random.key(1), (32, 2))
    weights = jnp.ones(32)

    def train(steps, max_steps, min_steps):
        knobs = {"train_steps": jnp.float32(steps), "learning_rate": jnp.float32(3e-3)}
        return training.train(jax.random.key(2), net, params, points, weights, knobs, "cosine", max_steps, 8, min_steps)

    short, alone = train(5, 9, 0), train(5, 5, 5)
    masked, unmasked = train(9, 9, 0), train(9, 9, 9)
    for a, b in zip(
        jax.tree.leaves(short) + jax.tree.leaves(masked), jax.tree.leaves(alone) + jax.tree.leaves(unmasked)
    ):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(short), jax.tree.leaves(masked)))


def test_capacity_covers_the_accumulated_pool():
    config = small_config(**{"regime.name": "accumulate", "regime.real_fraction": [0.0, 0.25]})
    # real_data_size M + G (R + M) with R = floor(0.25 M) = 4: the regimes module's raw-pool capacity, as KDE's.
    assert base.make_model(config).capacity == 16 + 3 * (4 + 16)
    assert base.make_model(small_config()).capacity == 16


@pytest.mark.parametrize(
    "overrides",
    [
        {"regime.name": "accumulate", "samples_per_generation": 64, "num_generations": 10},
        {"regime.name": "replace", "samples_per_generation": 64},
    ],
)
def test_declared_working_bytes_cover_what_xla_allocates_for_sampling_and_evaluation(overrides):
    """chain_block "auto" sizes blocks from the family's declared working set: it must not undercount the temporary
    buffers XLA's own memory analysis reports for one chain's sample and evaluate (the [n, C] posterior and the
    [C, C] memorization distances dominate under accumulate)."""
    config = small_config(**{"seeds": 1, **overrides})
    group = sweep.expand(config)[0]
    model = group.model
    knobs = {name: value[0] for name, value in group.knobs.items()}
    params = jax.eval_shape(lambda k: model.init(jax.random.key(0), k), knobs)
    samples = jax.ShapeDtypeStruct((model.candidates, model.dim), jnp.float32)
    reference = model.reference()

    def temp_bytes(function, *args):
        return jax.jit(function).lower(*args).compile().memory_analysis().temp_size_in_bytes

    sample = temp_bytes(lambda p, k: model.sample(jax.random.key(1), p, model.candidates, k), params, knobs)
    evaluate = temp_bytes(lambda p, x, k: model.evaluate(p, x, reference, k), params, samples, knobs)
    declared = model.working_bytes_per_chain(knobs)
    assert declared >= max(sample, evaluate), (declared, sample, evaluate)
    # Within an order of magnitude of the larger phase: a gross overcount would make blocks needlessly small.
    assert declared <= 10 * max(sample, evaluate) + 4 * 2**20, (declared, sample, evaluate)


def test_capabilities_truth_sampler_but_no_isotropic_gaussian_truth():
    """The truth is N(0, s^2 I) only for truth = gaussian; curation operators that read IsotropicGaussianTruth (target
    distance, quadratic reward, self-correction's transport map) would treat the mixture as that Gaussian, so the
    family declares no true_mean and supports() says no."""
    model = base.make_model(small_config())
    assert contract.supports(model, contract.TruthSampler)
    assert not contract.supports(model, contract.IsotropicGaussianTruth)


def test_metric_names_follow_the_truth():
    names = {truth: base.make_model(small_config(**{"model.truth": truth})).metric_names for truth in ("ring", "moons")}
    assert names["ring"] == ("energy_distance", "train_coverage", "memorized_share", "ring_radius_error")
    assert names["moons"] == ("energy_distance", "train_coverage", "memorized_share")


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"model.score": "truth", "model.truth": "ring"}, "model.truth"),
        ({"model.truth": "mixture", "model.dim": 3}, "model.dim"),
        ({"model.score": "unknown_net"}, "model.score"),
        ({"model.width": 64}, "model.width"),
        (
            {"model.score": "truth", "model.truth": "gaussian", "model.dim": 1, "model.train_steps": 10},
            "model.train_steps",
        ),
        ({"model.score": "mlp", "model.start_from": "checkpoint"}, "model.start_from"),
        ({"model.truncation": 1.0}, "model.truncation"),
        ({"model.sampling_steps": 0}, "model.sampling_steps"),
    ],
)
def test_bad_config_is_a_one_line_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^config.{field}:") as error:
        sweep.expand(small_config(**overrides))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("learned", [False, True], ids=["exact", "mlp"])
def test_conformance_kit_passes(learned):
    overrides = {"regime.name": "accumulate", "model.truncation": 0.1}
    config = learned_config(**overrides) if learned else small_config(**overrides)
    checks = testing.check_config(config, write=lambda line: None)
    assert not [check.line() for check in checks if check.status == "FAIL"]


def test_chain_results_do_not_depend_on_how_many_chains_run_beside_them():
    config = small_config(**{"regime.name": "accumulate", "model.truncation": (0.0, 0.1)})
    small = runner.simulate(config)
    large = runner.simulate(runner.as_config({"seeds": 8}, config))
    ids = large.knobs["seed"] < 4
    for name, values in small.metrics.items():
        np.testing.assert_array_equal(values, large.metrics[name][ids], err_msg=name)


@pytest.mark.parametrize("learned", [False, True], ids=["exact", "mlp"])
def test_a_killed_run_resumes_bit_identically(tmp_path, learned):
    # The learned network resumes from its checkpointed weights (start_from = previous reads them); its two learning
    # rates and step counts make 4 chains a seed, the masked scan running to the largest step count for all.
    overrides = {"model.learning_rate": (1e-3, 3e-3), "model.train_steps": (10, 20)}
    config = learned_config(**overrides) if learned else small_config(**{"model.truncation": (0.0, 0.1)})
    straight = runner.run(config, str(tmp_path / "straight"))
    assert not np.any(straight.metrics["failed"]) and np.all(np.isfinite(straight.metrics["energy_distance"]))
    # A kill between generation 3's metric rows and its checkpoint: the resume cuts the rows back and recomputes.
    shutil.copytree(tmp_path / "straight", tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "group_000" / "3")
    assert os.path.isdir(tmp_path / "killed" / "checkpoints" / "group_000" / "2")
    resumed = runner.run(config, str(tmp_path / "killed"))
    with open(tmp_path / "killed" / workdir_io.RUN_FILE) as handle:
        assert json.load(handle)["resumes"] == [{"group": 0, "from_generation": 2, "to_generation": 3}]
    for name in straight.metrics:
        np.testing.assert_array_equal(straight.metrics[name], resumed.metrics[name], err_msg=name)
    if learned:
        # Chain-count invariance of the learned family (the exact one's is the test above): half the chains alone.
        alone = runner.simulate(runner.as_config({"seeds": 1}, config))
        ids = straight.knobs["seed"] < 1
        for name, values in alone.metrics.items():
            np.testing.assert_array_equal(values, straight.metrics[name][ids], err_msg=name)
