"""Tests of the diffusion family's image side: the U-Net (shapes, time conditioning, parameter count, training beats
the best per-pixel linear denoiser), the image truths (per-chain training sets in [-1, 1]) and the image metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.data import images as image_data
from collapse_jax.models.diffusion import sampling, unet


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def digits(data_dir):
    """The first 32 training digits as flat points in [-1, 1] (the image truths' scaling)."""
    images, _ = image_data.load_images("digits", "train", data_dir)
    return jnp.asarray(images[:32].reshape(32, 64), jnp.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def tiny_unet():
    """Two levels (8x8 -> 4x4), widths 8 and 16, GroupNorm with 4 groups: the CPU test size; matmul convolutions
    (vae/conv.py: XLA:CPU conv gradients in a scan are slow, 10x at the suite's -O0)."""
    init, apply = unet.make_unet((8, 8), (8, 16), 4, matmul=True)
    return init, jax.jit(apply)


def randomized(params, key):
    """The params with a random output conv (the fresh net's is zero, so its output would not show any dependence)."""
    out = params["params"]["out"]
    keys = jax.random.split(key, len(out))
    params["params"]["out"] = {name: 0.1 * jax.random.normal(k, v.shape) for (name, v), k in zip(out.items(), keys)}
    return params


def test_unet_maps_flat_images_to_flat_noise_and_starts_at_zero(tiny_unet, digits):
    init, apply = tiny_unet
    params = init(jax.random.key(0))
    out = apply(params, digits[:4], jnp.full((4,), 0.3))
    assert out.shape == (4, 64) and out.dtype == jnp.float32
    # The output conv starts at zero (Nichol & Dhariwal's zero_module): the fresh net is the trivial predictor 0.
    np.testing.assert_array_equal(np.asarray(out), 0.0)


def test_unet_output_depends_on_t_and_each_image_only_on_its_own_t(tiny_unet, digits):
    init, apply = tiny_unet
    params = randomized(init(jax.random.key(0)), jax.random.key(1))
    x, times = digits[:4], jnp.asarray([0.1, 0.9, 0.1, 0.9])
    early, late = apply(params, x, jnp.full((4,), 0.1)), apply(params, x, jnp.full((4,), 0.9))
    # The time embedding enters every residual block: moving t from 0.1 to 0.9 must move the output by a visible
    # share of its size (an unused embedding gives exactly 0).
    assert float(jnp.max(jnp.abs(early - late))) > 0.05 * float(jnp.max(jnp.abs(early)))
    # GroupNorm normalizes per image: image i's output depends on x_i and t_i only. Other images and times around it
    # (same batch shape: one compile) leave it unchanged up to float32 round-off.
    mixed = apply(params, x, times)
    others = apply(params, jnp.concatenate([x[:1], digits[10:13]]), jnp.asarray([0.1, 0.5, 0.7, 0.2]))
    np.testing.assert_allclose(np.asarray(mixed[0]), np.asarray(others[0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed[::2]), np.asarray(early[::2]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed[1::2]), np.asarray(late[1::2]), atol=1e-5)


@pytest.mark.parametrize(
    "channels, groups, shape", [((8, 16), 4, (8, 8)), ((8, 16), 0, (8, 8)), ((4, 8, 16), 2, (28, 28))]
)
def test_unet_parameter_count_matches_the_closed_form(channels, groups, shape):
    init, _ = unet.make_unet(shape, channels, groups, matmul=False)
    shapes = jax.eval_shape(init, jax.random.key(0))
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes)) == unet.parameter_count(channels, groups)


def test_unet_refuses_images_that_do_not_halve_exactly():
    with pytest.raises(ValueError, match=r"config.model.depth: 3 U-Net levels .* divisible by 4; the images are 6x6"):
        unet.make_unet((6, 6), (4, 8, 16), 0, matmul=False)


def per_pixel_linear_loss(points: np.ndarray, schedule: str, grid: int = 4000) -> float:
    """E_t sum_p alpha_t^2 v_p / (alpha_t^2 v_p + sigma_t^2), t ~ U[0, 1] (midpoint rule), v_p the pixel variances:
    the epsilon-MSE of the best denoiser that is affine in each pixel alone (Wiener's filter per pixel; Var[eps_p |
    x_p] for a Gaussian pixel of variance v_p, which the affine predictor attains for any pixel law)."""
    t = (np.arange(grid) + 0.5) / grid
    alpha, sigma = (np.asarray(v, np.float64) for v in sampling.alpha_sigma(schedule, jnp.asarray(t)))
    signal = alpha[:, None] ** 2 * np.var(np.asarray(points, np.float64), axis=0)[None, :]
    return float(np.mean(np.sum(signal / (signal + sigma[:, None] ** 2), axis=1)))


STEPS = 200


def test_a_trained_unet_beats_the_best_per_pixel_linear_denoiser(tiny_unet, digits):
    import optax

    init, apply = tiny_unet
    params = init(jax.random.key(0))

    def per_image_loss(params, key):
        """sum_p (eps_hat - eps)^2 of 32 draws of (image, t ~ U[0, 1], eps ~ N(0, I)): Ho et al.'s simple loss."""
        index_key, time_key, noise_key = jax.random.split(key, 3)
        x0 = digits[jax.random.randint(index_key, (32,), 0, digits.shape[0])]
        t = jax.random.uniform(time_key, (32,))
        alpha, sigma = sampling.alpha_sigma("cosine", t)
        noise = jax.random.normal(noise_key, x0.shape)
        return jnp.sum((apply(params, alpha[:, None] * x0 + sigma[:, None] * noise, t) - noise) ** 2, axis=-1)

    optimizer = optax.adam(3e-3)

    @jax.jit
    def train(params, key):
        def step(state, step_key):
            params, opt_state = state
            gradient = jax.grad(lambda p: jnp.mean(per_image_loss(p, step_key)))(params)
            updates, opt_state = optimizer.update(gradient, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, STEPS))[0][0]

    @jax.jit
    def evaluate(params):
        """Mean loss over 128 x 32 = 4096 fixed draws and its standard error."""
        values = jax.lax.map(lambda k: per_image_loss(params, k), jax.random.split(jax.random.key(9), 128)).ravel()
        return jnp.mean(values), jnp.std(values) / np.sqrt(values.size)

    start, start_error = evaluate(params)
    trained, trained_error = evaluate(train(params, jax.random.key(1)))
    d = digits.shape[1]
    # Untrained (eps_hat = 0): the loss is E|eps|^2 = d = 64; over 4096 draws its standard error is sqrt(2d / 4096)
    # = 0.18, so 4 standard errors bound the estimate's distance from d.
    assert abs(float(start) - d) < 4 * float(start_error)
    # The best per-pixel affine denoiser of these 32 digits reaches 17.0 (0.27 d); the trained net's estimate must lie
    # below it by 4 of its standard errors (~0.15): it uses neighbouring pixels, which no per-pixel filter can.
    bound = per_pixel_linear_loss(np.asarray(digits), "cosine")
    assert float(trained) + 4 * float(trained_error) < bound < 0.3 * d
