"""Closed-form collapse laws of the Gaussian model (SCIENCE.md: Kazdan et al., Shumailov et al., MAD)."""

import math

import numpy as np
from scipy import special

from collapse_jax.host import runner


def run(config, **overrides):
    return runner.simulate(runner.as_config(overrides, config))


def within_standard_errors(values: np.ndarray, expected: np.ndarray, variance: np.ndarray, chains: int, z: float = 4.5):
    """|mean - expected| <= z * sqrt(Var / chains): with z = 4.5 a correct law fails one column in ~1e5."""
    tolerance = z * np.sqrt(variance / chains)
    assert np.all(np.abs(values.mean(axis=0) - expected) <= tolerance), (values.mean(axis=0), expected, tolerance)


def test_mle_trace_ratio_decays_as_one_minus_one_over_m_to_the_n(gaussian_config):
    # Kazdan et al.: E[tr S_n]/tr S_0 = (1 - 1/M)^n; column g holds fit n = g + 1. Each refit multiplies the variance by
    # an independent chi2_{M-1}/M factor (E = (M-1)/M, E[X^2] = (M^2-1)/M^2), which gives the exact variance below.
    chains, m = 4000, 20
    r = run(gaussian_config, seeds=chains, samples_per_generation=m, num_generations=10, chain_block=512)
    n = np.arange(1, 12)
    expected = (1 - 1 / m) ** n
    variance = ((m * m - 1) / m**2) ** n - expected**2
    within_standard_errors(r.metrics["trace_ratio"], expected, variance, chains)


def test_mle_mean_error_grows_as_one_minus_decay(gaussian_config):
    # Kazdan et al.: E|mu_n - mu_0|^2 = sigma^2 d (1 - (1 - 1/M)^n). Tolerance from the chains' own spread (4.5 SE).
    chains, m, d = 4000, 20, 2
    r = run(
        gaussian_config, seeds=chains, samples_per_generation=m, num_generations=10, chain_block=512, **{"model.dim": d}
    )
    values = r.metrics["mean_sq_error"]
    expected = d * (1 - (1 - 1 / m) ** np.arange(1, 12))
    within_standard_errors(values, expected, values.var(axis=0), chains)


def test_unbiased_w2_matches_closed_form_and_one_point_five_n_over_m(gaussian_config):
    # d = 1, unbiased: E[mu_n^2] = n/M, E[s_n^2] = 1, E[s_n] = c^n with c = E[sqrt(chi2_{M-1}/(M-1))], so
    # E[W2^2] = n/M + 2 - 2 c^n, which is ~1.5 n/M for n << M (Shumailov et al. SI).
    chains, m = 4000, 200
    r = run(
        gaussian_config,
        seeds=chains,
        samples_per_generation=m,
        num_generations=10,
        chain_block=512,
        **{"model.estimator": "unbiased"},
    )
    n = np.arange(1, 12)
    c = math.sqrt(2 / (m - 1)) * math.exp(special.gammaln(m / 2) - special.gammaln((m - 1) / 2))
    exact = n / m + 2 - 2 * c**n
    values = r.metrics["w2_sq_to_truth"]
    within_standard_errors(values, exact, values.var(axis=0), chains)
    np.testing.assert_allclose(exact, 1.5 * n / m, rtol=0.02)  # the SI's first-order law agrees to 2% here


def test_unbiased_median_variance_falls_while_mean_stays(gaussian_config):
    # Shumailov et al. Thm 3.1: E[s_n^2] = 1 (martingale) but s_n -> 0 a.s.; SCIENCE.md: median s^2 at M=100 is 0.90 at
    # n=10. Median SE ~ 1.25 sd / sqrt(C) with sd(s_10^2) ~ sqrt(2*10/99) = 0.45 -> 0.013 at C = 2000; allow 0.05.
    chains = 2000
    r = run(
        gaussian_config,
        seeds=chains,
        samples_per_generation=100,
        num_generations=9,
        chain_block=512,
        **{"model.estimator": "unbiased"},
    )
    trace = r.metrics["trace_ratio"]
    assert abs(np.median(trace[:, 9]) - 0.90) < 0.05
    assert abs(trace[:, 9].mean() - 1.0) < 4.5 * trace[:, 9].std() / math.sqrt(chains)
    assert np.median(trace[:, 9]) < np.median(trace[:, 4]) < np.median(trace[:, 0])


def test_sampling_bias_shrinks_expected_covariance_as_lambda_to_the_t(gaussian_config):
    # MAD (Alemohammad et al.): unbiased estimator, sampling from N(mu, lambda S): E[tr S_t] = lambda^t tr S_0.
    # Factor per step lambda * chi2_{M-1}/(M-1): E[X^2] = lambda^2 (1 + 2/(M-1)) gives the exact variance.
    chains, m, lam = 3000, 100, 0.8
    r = run(
        gaussian_config,
        seeds=chains,
        samples_per_generation=m,
        num_generations=10,
        chain_block=512,
        **{"model.estimator": "unbiased", "model.sampling_bias": (lam, 1.0)},
    )
    biased = r.metrics["trace_ratio"][r.knobs["sampling_bias"] == np.float64(lam)]
    t = np.arange(11)
    expected = lam**t
    variance = lam ** (2 * t) * ((1 + 2 / (m - 1)) ** (t + 1) - 1)
    within_standard_errors(biased, expected, variance, chains)
    assert abs(expected[10] - 0.107) < 1e-3  # SCIENCE.md's quoted value


def test_accumulate_does_not_collapse_and_statistics_match_the_raw_pool(gaussian_config):
    # Gerstgrasser et al. / SCIENCE.md: unbiased, M = 100, n = 100 accumulate: median s^2 ~ 0.98, no collapse.
    config = runner.as_config(
        {
            "seeds": 400,
            "num_generations": 99,
            "chunk_generations": 33,
            "chain_block": 400,
            "regime.name": "accumulate",
            "model.estimator": "unbiased",
        },
        gaussian_config,
    )
    statistics = runner.simulate(config).metrics["trace_ratio"]
    assert 0.95 < np.median(statistics[:, -1]) < 1.01
    # The O(1)-memory sufficient-statistics path must equal fitting the raw pool (float32 reassociation only).
    config.seeds = 24
    config.chain_block = 8
    raw = runner.simulate(runner.as_config({"regime.keep_raw_pool": True}, config)).metrics["trace_ratio"]
    np.testing.assert_allclose(raw, statistics[:24], rtol=2e-4)


def test_collapse_or_thrive_sweep_medians(gaussian_config):
    # SCIENCE.md (Kazdan et al. sweep, MLE, d=1): M=100, n=100 trace-ratio median 0.141 replace vs 0.975 accumulate.
    r = run(
        gaussian_config,
        seeds=2000,
        samples_per_generation=100,
        num_generations=99,
        chunk_generations=33,
        chain_block=512,
        **{"regime.name": ("replace", "accumulate")},
    )
    final = r.metrics["trace_ratio"][:, -1]
    assert abs(np.median(final[r.knobs["regime"] == "replace"]) - 0.141) < 0.03
    assert abs(np.median(final[r.knobs["regime"] == "accumulate"]) - 0.975) < 0.02
