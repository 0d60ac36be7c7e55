"""model.sampling = "statistics": drawing the synthetic data's sufficient statistics exactly gives the same chains in
distribution as drawing the points (two-sample KS), keeps the closed forms of SCIENCE.md, and rejects what needs points.
"""

from __future__ import annotations

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from collapse_jax.host import runner, sweep
from collapse_jax.models import gaussian
from collapse_jax.models._multinomial import draw_multinomial_counts
from experiments.configs import discrete as discrete_config
from experiments.configs import gaussian as gaussian_config_module

# A correct sampler gives uniform KS p-values; the seeds are fixed, so a test either always passes or always fails.
# 1e-4 over the <= 60 comparisons below keeps the chance that a correct sampler lands on a failing seed set below 1%.
# With 1000 vs 1000 chains p = 1e-4 is KS distance D = 0.10, about a 0.25 sd location shift: a chi2(n) instead of
# chi2(n - 1) at M = 20 moves log trace_ratio by 12 x 0.05 = 0.6 after 12 fits against a spread ~1.1 (0.55 sd).
KS_FLOOR = 1e-4
GAUSSIAN_SEEDS, DISCRETE_SEEDS = 1000, 1000
GENERATIONS = 12
# Real fractions sweep the synthetic count n = M - floor(rho M) inside one compile: at M = 20, 20, 18 and 1 (1 is the
# edge case whose drawn scatter is exactly 0).
REAL_FRACTIONS = (0.0, 0.1, 0.95)


def _gaussian(sampling: str, **overrides):
    config = runner.as_config(
        {
            # fresh at rho = 0 is replace (no real data either way); replace's real points come from the real set, a
            # path statistics mode does not touch (the real part stays points), so the discrete runs cover it.
            "regime.name": ("fresh", "accumulate"),
            "regime.real_fraction": REAL_FRACTIONS,
            "seeds": GAUSSIAN_SEEDS,
            "num_generations": GENERATIONS,
            "samples_per_generation": 20,
            "chunk_generations": GENERATIONS,
            "chain_block": 1000,
            "make_plots": False,
            # d = 1 compiles fastest; the d = 3 Bartlett factor (off-diagonals, singular Wishart) is tested model-level.
            "model.dim": 1,
            "model.sampling_bias": 0.9,
            "model.test_size": 1000,
            "model.sampling": sampling,
            **overrides,
        },
        gaussian_config_module.get_config(),
    )
    return runner.simulate(config)


def _discrete(sampling: str, **overrides):
    config = runner.as_config(
        {
            "regime.name": "replace",
            "regime.real_fraction": (0.0, 0.1, 0.5),
            "seeds": DISCRETE_SEEDS,  # 1000 per real fraction
            "num_generations": GENERATIONS,
            "samples_per_generation": 20,
            "chunk_generations": GENERATIONS,
            "chain_block": 1000,
            "make_plots": False,
            "model.num_outcomes": 6,
            "model.zipf_exponent": 1.0,  # rare outcomes get lost within the run: absorbing zeros are exercised
            "model.sampling": sampling,
            **overrides,
        },
        discrete_config.get_config(),
    )
    return runner.simulate(config)


@pytest.fixture(scope="module")
def gaussian_runs():
    """Both modes, fresh and accumulate: four compiles, so only the slow tests use it."""
    return {sampling: _gaussian(sampling) for sampling in ("points", "statistics")}


@pytest.fixture(scope="module")
def discrete_runs():
    return {sampling: _discrete(sampling) for sampling in ("points", "statistics")}


def _ks_agree(runs, metrics, columns, labels):
    """Every (label group, metric, column): KS of statistics-mode chains vs points-mode chains has p >= KS_FLOOR."""
    points, drawn = runs["points"], runs["statistics"]
    for label in labels:
        rows_points, rows_drawn = label(points), label(drawn)
        for name in metrics:
            for column in columns:
                a, b = points.metrics[name][rows_points, column], drawn.metrics[name][rows_drawn, column]
                assert np.all(np.isfinite(b)), (name, column)
                if np.all(a == a[0]) and np.all(b == b[0]):
                    assert a[0] == b[0], (name, column)
                    continue
                p_value = stats.ks_2samp(a, b).pvalue
                assert p_value >= KS_FLOOR, (name, column, p_value)


def _select(regime, rho):
    return lambda r: (r.knobs["regime"] == regime) & np.isclose(r.knobs["real_fraction"], rho)


def test_gaussian_drawn_statistics_match_drawn_points_in_distribution_for_every_regime_and_real_fraction(gaussian_runs):
    """Fresh (= replace at rho 0), accumulate (statistics pool), rho in {0, 0.1, 0.95}: same law after 1, 4, 12 fits."""
    labels = [_select(regime, rho) for regime in ("fresh", "accumulate") for rho in REAL_FRACTIONS]
    _ks_agree(gaussian_runs, ("trace_ratio", "mean_sq_error", "logdet_ratio"), (1, 4, GENERATIONS), labels)


def test_gaussian_statistics_mode_keeps_the_mle_trace_decay_with_sampling_bias():
    """E[tr S_n] / tr S_0 = (lambda (1 - 1/M))^n: each refit multiplies the variance by lambda chi2(M - 1) / M."""
    drawn = _gaussian("statistics", **{"regime.name": "replace", "regime.real_fraction": 0.0})
    values = drawn.metrics["trace_ratio"]
    m, bias = 20, 0.9
    n = np.arange(GENERATIONS + 1)
    # Column 0 is the fit on real data: E = (M - 1) / M exactly; each later fit multiplies the mean by lambda (M-1)/M.
    expected = ((m - 1) / m) * (bias * (m - 1) / m) ** n
    # 4.5 standard errors of the 1000 chains' own spread per column: a correct law fails one column in ~1e5.
    tolerance = 4.5 * values.std(axis=0) / math.sqrt(len(values))
    assert np.all(np.abs(values.mean(axis=0) - expected) <= tolerance), (values.mean(axis=0), expected)


def test_discrete_drawn_counts_match_drawn_points_in_distribution(discrete_runs):
    labels = [_select("replace", rho) for rho in (0.0, 0.1, 0.5)]
    _ks_agree(discrete_runs, ("heterozygosity", "support_size", "kl_to_truth"), (1, 4, GENERATIONS), labels)


def test_discrete_statistics_mode_keeps_heterozygosity_decay_one_minus_one_over_m(discrete_runs):
    """Wright–Fisher: E[h_{n+1} | h_n] = (1 - 1/M) h_n, so E[h_n] = E[h_0] (1 - 1/M)^n from the first fit on."""
    drawn = discrete_runs["statistics"]
    values = drawn.metrics["heterozygosity"][_select("replace", 0.0)(drawn)].astype(np.float64)
    # Check the ratio to the chains' own generation-0 fit: E[h_n] - h_0 (1 - 1/M)^n has mean 0; its spread gives the
    # tolerance (4.5 standard errors of 1000 chains per column).
    residual = values - values[:, :1] * (1 - 1 / 20) ** np.arange(GENERATIONS + 1)
    tolerance = 4.5 * residual.std(axis=0)[1:] / math.sqrt(len(values))
    assert np.all(np.abs(residual.mean(axis=0)[1:]) <= tolerance), (residual.mean(axis=0), tolerance)


def test_statistics_mode_chain_bits_do_not_depend_on_chain_count_or_chunk_length(discrete_runs):
    """The drawn statistics come from the chain's generation key: 8 chains in chunks of 5 equal the first 8 of 2000
    (same chain_block: XLA may vectorize another block size differently, see Engine._blocked)."""
    few = _discrete("statistics", seeds=8, chunk_generations=5, **{"regime.real_fraction": 0.0})
    many = discrete_runs["statistics"]
    rows = _select("replace", 0.0)(many)
    for name in ("heterozygosity", "absorbed"):
        np.testing.assert_array_equal(few.metrics[name], many.metrics[name][rows][:8])


def test_gaussian_bartlett_statistics_match_statistics_of_drawn_points_in_three_dimensions():
    """mean ~ N(mu, lambda Sigma / n), scatter ~ Wishart(lambda Sigma, n - 1), singular for n - 1 < d = 3: every entry's
    law (KS over 4000 draws) equals that of the statistics of n points from N(mu, lambda Sigma)."""
    model = gaussian.GaussianModel(dim=3, ddof=0, true_mean=0.0, true_std=1.0, real_data_size=4, test_size=4)
    params = {
        "mean": jnp.asarray([1.0, -1.0, 0.5]),
        "cov": jnp.asarray([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]]),
    }
    knobs = {"sampling_bias": jnp.float32(0.8)}
    draws = 4000
    keys = jax.random.split(jax.random.key(0), draws)
    drawn_of = jax.jit(jax.vmap(lambda key, n: model.sample_statistics(key, params, n, knobs), in_axes=(0, None)))
    for n in (2, 5, 40):
        drawn = drawn_of(keys, jnp.float32(n))
        points = jax.vmap(lambda key, n=n: model.statistics(model.sample(key, params, n, knobs), jnp.ones(n)))(
            jax.random.split(jax.random.key(1), draws)
        )
        for name in ("mean", "scatter"):
            a, b = np.asarray(drawn[name]).reshape(draws, -1), np.asarray(points[name]).reshape(draws, -1)
            for entry in range(a.shape[1]):
                assert stats.ks_2samp(a[:, entry], b[:, entry]).pvalue >= KS_FLOOR, (n, name, entry)
        # Rank min(n - 1, d): the singular Wishart has no mass off the (n - 1)-dimensional span.
        assert np.all(np.linalg.matrix_rank(np.asarray(drawn["scatter"][:20]), tol=1e-4) == min(n - 1, 3))


def test_gaussian_sample_statistics_edge_counts_zero_and_one():
    """n = 0: count 0 and scatter 0 (weight 0 when merged); n = 1: scatter 0; mean ~ N(mu, lambda Sigma / n)."""
    model = gaussian.GaussianModel(dim=2, ddof=0, true_mean=0.0, true_std=1.0, real_data_size=4, test_size=4)
    params = {"mean": jnp.asarray([1.0, -2.0]), "cov": jnp.asarray([[2.0, 0.5], [0.5, 1.0]])}
    draw = jax.jit(lambda key, n: model.sample_statistics(key, params, n, {"sampling_bias": jnp.float32(1.0)}))
    empty, single = draw(jax.random.key(0), jnp.float32(0)), draw(jax.random.key(1), jnp.float32(1))
    assert float(empty["count"]) == 0 and float(single["count"]) == 1
    np.testing.assert_array_equal(empty["scatter"], 0.0)
    np.testing.assert_array_equal(single["scatter"], 0.0)
    np.testing.assert_array_equal(empty["mean"], params["mean"])
    real = model.statistics(jnp.asarray([[0.0, 1.0], [2.0, 3.0]]), jnp.ones(2))
    merged = model.merge_statistics(real, empty)
    for name in ("count", "mean", "scatter"):
        np.testing.assert_array_equal(merged[name], real[name])


def test_discrete_sample_statistics_never_revives_a_lost_outcome_and_sums_to_n():
    """Absorbing states: outcomes of probability 0 get count 0 exactly; counts sum to n for any traced n (0 too)."""
    counts_of = jax.jit(jax.vmap(draw_multinomial_counts))  # one compile serves both cases
    n = jnp.asarray([0.0, 1.0, 7.0, 1e3, 1e5, 1e6] * 200)
    keys = jax.random.split(jax.random.key(0), n.shape[0])
    probabilities = jnp.broadcast_to(jnp.asarray([0.0, 0.7, 0.0, 0.3 - 1e-6, 1e-6, 0.0]), (n.shape[0], 6))
    counts = np.asarray(counts_of(keys, probabilities, n))
    np.testing.assert_array_equal(counts.sum(axis=1), np.asarray(n))
    np.testing.assert_array_equal(counts[:, [0, 2, 5]], 0.0)
    # A fixed chain (one outcome left) stays fixed: all n draws land on it.
    fixed = np.asarray(counts_of(keys, jnp.zeros_like(probabilities).at[:, 4].set(1.0), n))
    np.testing.assert_array_equal(fixed[:, 4], np.asarray(n))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.sampling": "moments"}, "unknown value"),
        ({"model.sampling": "statistics", "from": "gmm"}, "needs a model with sample_statistics"),
        ({"regime.name": "accumulate_subsample", "model.sampling": "statistics"}, "accumulate_subsample"),
        ({"regime.keep_raw_pool": True, "regime.name": "accumulate", "model.sampling": "statistics"}, "raw pool"),
        (
            {"curation": {"name": "verifier", "keep_good": 1.0, "keep_bad": 0.5}, "model.sampling": "statistics"},
            "curation",
        ),
        ({"curation": {"name": "none", "oversample": 2}, "model.sampling": "statistics"}, "oversample"),
    ],
)
def test_bad_sampling_config_raises_one_line_error_naming_model_sampling(overrides, message):
    shipped = importlib.import_module(f"experiments.configs.{overrides.pop('from', 'discrete')}").get_config()
    config = runner.as_config({"regime.name": "replace", **overrides}, shipped)
    with pytest.raises(ValueError, match="config.model.sampling") as error:
        sweep.expand(config)
    assert message in str(error.value) and "\n" not in str(error.value)
