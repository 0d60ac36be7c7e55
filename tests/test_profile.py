"""The collapse profile (analysis/profile.py): Results.profile against numpy on the arrays, onset on runs known to
collapse or not, the report's opening table, and the breakdown section leaving out lines it cannot judge."""

import numpy as np
import pytest

from collapse_jax.analysis import plots, profile
from collapse_jax.analysis.results import Results
from collapse_jax.host import runner
from experiments.configs import gaussian

GENERATIONS = np.array([0, 3, 6, 9])  # config.record_every = 3: column j is generation 3 j


def hand_made(report: dict | None = None) -> Results:
    """Two real fractions x 5 chains at generations 0, 3, 6, 9: `ratio` starts at ~1 and falls by 0.6 every 3
    generations at real_fraction 0 (flat at 0.5); `error` starts at 0 +- 0.2 (each chain its own offset) and grows;
    chain 2 fails at generation 6."""
    rng = np.random.default_rng(0)
    decay = np.where(np.arange(10)[:, None] < 5, 0.6 ** np.arange(4), 1.0)  # [chains, columns]
    ratio = (1.0 + 0.05 * rng.standard_normal((10, 4))) * decay
    error = 0.1 * np.tile([-2.0, -1.0, 0.0, 1.0, 2.0], 2)[:, None] + np.array([0.0, 0.02, 0.3, 0.9])  # median 0 at 0
    failed = np.zeros((10, 4))
    failed[2, 2:] = 1.0
    ratio[2, 2:] = error[2, 2:] = np.nan  # a failed chain's metrics are NaN from its failure on
    knobs = {"seed": np.arange(10) % 5, "real_fraction": np.repeat([0.0, 0.5], 5)}
    config = {"model": {"name": "hand_made"}, "num_generations": 9, "record_every": 3, "report": report or {}}
    metrics = {"ratio": ratio.astype(np.float32), "error": error.astype(np.float32), "failed": failed}
    return Results(metrics, knobs, config, np.arange(10), GENERATIONS)


def test_profile_is_numpy_on_the_arrays_with_failed_chains_out_and_true_generation_numbers():
    results = hand_made()
    rows = {(r["real_fraction"], r["metric"]): r for r in results.profile()}
    assert [r["metric"] for r in results.profile()] == ["ratio"] * 2 + ["error"] * 2  # `failed` is no row
    for (rho, metric), row in rows.items():
        chains = np.flatnonzero(results.knobs["real_fraction"] == rho)
        chains = chains[chains != 2]  # the failed chain is out of every column, as in Results.summary
        values = results.metrics[metric][chains].astype(np.float64)
        low, median, high = np.quantile(values, [0.1, 0.5, 0.9], axis=0)
        assert (row["chains"], row["failed"]) == ((4, 1) if rho == 0.0 else (5, 0))
        assert (row["generation0"], row["generation0_low"], row["generation0_high"]) == pytest.approx(
            (median[0], low[0], high[0]), rel=1e-6
        )
        assert row["final_generation"] == 9  # the true generation number of the last column, not 3
        assert (row["final"], row["final_low"], row["final_high"]) == pytest.approx(
            (median[-1], low[-1], high[-1]), rel=1e-6
        )
        # The band: relative (t |gen0|, t = 0.5) where gen0 is resolved from 0, else absolute (t times its 10-90%
        # spread); `error` starts at median 0, so it must get the absolute band (the no-"n/a" rule).
        resolved = abs(median[0]) > (high[0] - low[0]) / 2
        assert row["band"] == ("relative" if resolved else "absolute") and (metric == "ratio") == resolved
        width = 0.5 * (abs(median[0]) if resolved else high[0] - low[0])
        assert row["band_half_width"] == pytest.approx(width, rel=1e-6)
        out = np.flatnonzero(np.abs(median - median[0]) > width)
        assert row["onset"] == (int(GENERATIONS[out[0]]) if len(out) else None)
        # Second half: generations >= 9 / 2, i.e. 6 and 9: the slope of log median between them.
        assert row["drift_rate"] == pytest.approx(np.log(median[3] / median[2]) / 3, rel=1e-5)
    # The decaying ratio leaves its +-50% band once below 1/2 (generation 6: 0.36), at log(0.6)/3 = -0.170 per gen.
    assert rows[0.0, "ratio"]["onset"] == 6 and rows[0.0, "ratio"]["drift_rate"] == pytest.approx(-0.170, abs=0.03)
    assert rows[0.5, "ratio"]["onset"] is None
    # 0.3 above a 0 start is past t (q90 - q10) = 0.5 x 0.34 (4 chains; 5 chains: 0.5 x 0.32); 0.02 is not.
    assert rows[0.0, "error"]["onset"] == 6


def test_profile_tolerance_follows_the_report_block_and_a_sign_change_has_no_drift_rate():
    wide = {(r["real_fraction"], r["metric"]): r for r in hand_made({"collapse_tolerance": {"ratio": 0.9}}).profile()}
    assert wide[0.0, "ratio"]["onset"] is None  # median 0.216 at generation 9 is within 90% of ~1
    assert wide[0.0, "error"]["band_half_width"] == pytest.approx(
        hand_made().profile("error")[0]["band_half_width"], rel=1e-12
    )  # other metrics keep the default t
    assert profile.drift_rate(GENERATIONS, np.array([1.0, 0.5, -0.1, 0.2]), 9) is None
    assert profile.drift_rate(GENERATIONS, np.array([1.0, 0.5, 0.0, 0.2]), 9) is None
    with pytest.raises(ValueError, match="metrics: 'w2' is not a metric of this run"):
        hand_made().profile(["w2"])


def test_every_report_opens_with_the_collapse_profile_and_leaves_unjudgeable_breakdowns_out(tmp_path):
    results = hand_made()
    text = open(plots.write_report(str(tmp_path), results)).read()
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:2] == ["# Collapse run: hand_made", "## Collapse profile"]
    table = text[text.index("## Collapse profile") : text.index("\n\n", text.index("| group | metric"))]
    assert len(table.splitlines()) == 2 + 2 + 4  # heading, blank, header, rule, one row per group and metric
    assert "| real_fraction=0, ratio" not in table and "| real_fraction=0 | ratio | 4 (1) |" in table
    assert "n/a" not in table
    # error's generation-0 median is ~0 at both real fractions: no relative band anywhere, so no breakdown line.
    assert "### ratio vs real_fraction" in text and "### error vs real_fraction" not in text
    assert "Left out of the breakdown: error vs real_fraction" in text and "n/a" not in text


@pytest.mark.slow  # two static groups to compile: 122 s at load average 18 on the shared 2-core CPU, 308 s at 23
def test_onset_replace_with_small_m_leaves_the_band_and_accumulate_does_not():
    """Gaussian MLE, d = 1, M = 10, real_fraction 0, 12 generations, 256 seeds (SCIENCE.md: replace's variance is
    sigma^2 prod chi2_{M-1}/M, so log trace_ratio is a random walk with drift E log(chi2_9 / 10) =
    psi(4.5) + log 2 - log 10 = -0.2206 per generation; accumulate's error sum converges, Gerstgrasser et al. 2024).

    Replace: the median halves (leaves the +-50% band) after log 2 / 0.2206 = 3.1 generations, so onset is 3 or 4;
    the median of log over 256 chains at generation 4 has sd ~ 1.25 sqrt(5 x 0.248 / 256) = 0.09 (0.4 generation),
    so 3..5 holds at > 3 sd. Drift over generations 6..12: the median's per-generation step has sd
    1.25 sqrt(0.248 / 256) = 0.039 and a least-squares slope over 7 points of a random walk ~ 0.4 of that, 0.017:
    tolerance 0.06 (3.5 sd; measured -0.261 with these seeds). Accumulate: the median stays near its generation-0
    level 0.88 (log distance 0.6 to the band's lower edge, noise ~ 0.05): onset None, |drift| < 0.03 (measured -0.008).
    """
    config = runner.as_config(
        {
            "regime.name": ("replace", "accumulate"),
            "regime.real_fraction": 0.0,
            "seeds": 256,
            "num_generations": 12,
            "samples_per_generation": 10,
            "chunk_generations": 12,
            "chain_block": 256,
            "make_plots": False,
            "model.test_size": 100,
        },
        gaussian.get_config(),
    )
    rows = {r["regime"]: r for r in runner.simulate(config).profile("trace_ratio")}
    assert 3 <= rows["replace"]["onset"] <= 5
    assert rows["replace"]["drift_rate"] == pytest.approx(-0.2206, abs=0.06)
    assert rows["accumulate"]["onset"] is None
    assert abs(rows["accumulate"]["drift_rate"]) < 0.03
    assert rows["replace"]["band"] == rows["accumulate"]["band"] == "relative"


def test_profile_rows_make_a_dataframe():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(hand_made().profile())
    assert set(profile.COLUMNS) <= set(frame.columns) and "real_fraction" in frame.columns
    assert len(frame) == 4
    assert frame.set_index(["real_fraction", "metric"]).loc[(0.0, "ratio"), "onset"] == 6


def synthetic(log_values: np.ndarray) -> Results:
    """One group of chains whose metric is exp(log_values) [chains, generations], every generation recorded."""
    chains, columns = log_values.shape
    config = {"model": {"name": "synthetic"}, "num_generations": columns - 1, "record_every": 1, "report": {}}
    metrics = {"metric": np.exp(log_values).astype(np.float32), "failed": np.zeros((chains, columns))}
    knobs = {"seed": np.arange(chains), "real_fraction": np.zeros(chains)}
    return Results(metrics, knobs, config, np.arange(chains), np.arange(columns))


def test_a_known_drift_is_recovered_inside_its_bootstrap_interval_and_a_flat_metric_is_not_resolved():
    """log metric = rate g + N(0, 0.1^2) per chain and generation, 64 chains, generations 0..20.

    The median of 64 normal draws has sd 1.2533 x 0.1 / 8 = 0.0157; the least-squares slope over the second half
    (generations 10..20, sum (g - 15)^2 = 110) has sd 0.0157 / sqrt(110) = 0.0015. So the estimate lies within 4 sd
    (0.006) of the rate, and a 95% interval is about 2 x 1.96 x 0.0015 = 0.0059 wide (asserted within a factor 2:
    the percentile bootstrap of a median over 64 chains is coarse).
    """
    rng = np.random.default_rng(1)
    noise = 0.1 * rng.standard_normal((64, 21))
    generations = np.arange(21)
    row = synthetic(-0.05 * generations + noise).profile("metric")[0]
    assert row["drift_rate"] == pytest.approx(-0.05, abs=0.006)
    assert row["drift_low"] < -0.05 < row["drift_high"] and row["drift_resolved"]
    assert 0.003 < row["drift_high"] - row["drift_low"] < 0.012
    flat = synthetic(noise).profile("metric")[0]  # rate 0: an interval that excludes 0 would be a false claim
    assert flat["drift_low"] < 0 < flat["drift_high"] and not flat["drift_resolved"]
    assert "not resolved" in profile._drift_cell(flat) and "not resolved" not in profile._drift_cell(row)


def test_a_step_out_of_the_band_has_a_resolved_onset_and_noise_around_the_band_edge_has_none():
    """log metric steps from 0 to log 0.3 at generation 5 (noise sd 0.02): every resample's median leaves the +-50%
    band at 5, so the onset is 5 with interval [5, 5]. A step to log 0.5 (the band's edge) under noise sd 0.3
    (the median's sd over 16 chains ~ 0.09) leaves the band in some resamples and not in others: not resolved."""
    rng = np.random.default_rng(2)
    generations = np.arange(12)
    step = np.where(generations >= 5, np.log(0.3), 0.0)
    row = synthetic(step + 0.02 * rng.standard_normal((32, 12))).profile("metric")[0]
    assert (row["onset"], row["onset_low"], row["onset_high"], row["onset_resolved"]) == (5, 5, 5, True)
    edge = np.where(generations >= 5, np.log(0.5), 0.0) + 0.3 * rng.standard_normal((16, 12))
    blurred = synthetic(edge).profile("metric")[0]
    assert blurred["onset"] is not None and blurred["onset_high"] is None  # some resamples never leave the band
    assert not blurred["onset_resolved"] and profile._onset_cell(blurred).endswith("never] not resolved")


def test_a_median_at_the_float32_floor_is_flagged_and_given_no_drift_rate(tmp_path):
    """A trace ratio that decays as exp(-2 g) until float32 rounding pins it near 1e-13 (generation 14 on): the
    slope of its log there would be the slope of the rounding, so the row carries the floor flag instead."""
    rng = np.random.default_rng(3)
    generations = np.arange(31)
    decay = np.maximum(-2.0 * generations, np.log(1e-13)) + 0.01 * rng.standard_normal((16, 31))
    row = synthetic(decay).profile("metric")[0]
    assert row["floor_generation"] == 14  # exp(-28) = 6.9e-13 <= 1e-12 < exp(-26) = 5.1e-12
    assert row["drift_rate"] is None and row["drift_low"] is None and not row["drift_resolved"]
    assert profile._drift_cell(row) == "at float32 floor from gen 14"
    # Above the floor the same decay keeps its drift rate (-2 per generation over generations 5..10).
    above = synthetic(decay[:, :11]).profile("metric")[0]
    assert above["floor_generation"] is None and above["drift_rate"] == pytest.approx(-2.0, abs=0.01)


def test_group_labels_name_the_config_fields_a_pair_knob_is_stored_as():
    labels = {"curation": "likelihood_filter", "keep_quantile_low": 0.1, "keep_quantile_high": 1.0, "seed_count": 3}
    assert profile.group_label(labels) == "curation=likelihood_filter, keep_quantiles=(0.1, 1), seed_count=3"


def test_above_the_subsample_size_the_interval_still_has_the_width_of_the_full_samples_median():
    """4,000 chains (10x SUBSAMPLE_CHAINS): the same law as the 64-chain drift test at sqrt(4000 / 64) = 7.9x less
    noise, so the slope's sd is 1.2533 x 0.1 / sqrt(4000) / sqrt(110) = 0.00019 and a 95% interval ~0.00074 wide
    (asserted within a factor 2: the subsampling scale sqrt(m / (n - m)) makes 400-chain subsamples spread as
    4,000-chain medians do; without it the interval would be sqrt(9) = 3x wider)."""
    rng = np.random.default_rng(4)
    chains = 10 * profile.SUBSAMPLE_CHAINS
    row = synthetic(-0.05 * np.arange(21) + 0.1 * rng.standard_normal((chains, 21))).profile("metric")[0]
    assert row["drift_rate"] == pytest.approx(-0.05, abs=4 * 0.00019)
    assert row["drift_low"] < -0.05 < row["drift_high"] and row["drift_resolved"]
    assert 0.00037 < row["drift_high"] - row["drift_low"] < 0.0015


def test_a_long_run_s_smaller_subsamples_keep_the_full_sample_s_interval_width():
    """4,000 chains x 401 generations: the budget (50 resamples) affords 4e6 / (50 x 401) = 199-chain subsamples, not
    400. The drift is fitted over generations 200..400 (201 points, sum of squared deviations 201 (201^2 - 1) / 12 =
    676,700), so the full sample's slope sd is 1.2533 x 0.1 / sqrt(4000) / sqrt(676,700) = 2.41e-6 and a 95% interval
    ~9.4e-6 wide; asserted within a factor 2 (sqrt(m / (n - m)) rescales any subsample size m to the n-chain spread;
    without it, 199-chain subsamples would give an interval sqrt(3801 / 199) = 4.4x wider)."""
    rng = np.random.default_rng(5)
    chains, generations = 4_000, 401
    assert profile.BOOTSTRAP_BUDGET // (profile.BOOTSTRAP_MIN_RESAMPLES * generations) < profile.SUBSAMPLE_CHAINS
    values = -0.001 * np.arange(generations) + 0.1 * rng.standard_normal((chains, generations))
    row = synthetic(values).profile("metric")[0]
    assert row["drift_low"] < -0.001 < row["drift_high"] and row["drift_resolved"]
    assert 4.7e-6 < row["drift_high"] - row["drift_low"] < 1.9e-5


def test_the_summary_s_medians_center_the_subsamples_as_the_bootstrap_s_own_would():
    # Above SUBSAMPLE_CHAINS the resamples are centred on the whole sample's medians; the report passes the summary's
    # (linear-interpolation quantiles) instead of sorting every column again: the same values to float64 rounding.
    rng = np.random.default_rng(6)
    results = synthetic(0.01 * np.arange(30) + rng.standard_normal((1_000, 30)))
    values = results.metrics["metric"]
    own = profile.bootstrap_medians(values, np.random.default_rng(0))
    summary = results.summary("metric")[0]
    full = (summary["median"], summary["q90"][0] - summary["q10"][0])
    given = profile.bootstrap_medians(values, np.random.default_rng(0), full)
    np.testing.assert_allclose(given[0], own[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(given[1], own[1], rtol=1e-6)
