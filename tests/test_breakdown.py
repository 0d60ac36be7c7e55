"""Breakdown analysis: exact interpolated crossings on hand-made lines, the final-vs-knob summary, report sections."""

import os

import ml_collections
import numpy as np
import pytest

from collapse_jax.analysis import breakdown, plots
from collapse_jax.analysis.results import Results
from collapse_jax.host import runner


def test_higher_is_safer_line_breaks_down_where_the_interpolated_deviation_meets_the_band():
    # d = final / gen0 - 1 = (-0.9, -0.7, -0.3, -0.05): inside |d| <= 0.5 from 0.2 on; d hits -0.5 at
    # (-0.5 + 0.7) / (-0.3 + 0.7) = 1/2 of the way from 0.1 to 0.2.
    verdict = breakdown.breakdown([0.0, 0.1, 0.2, 0.4], [0.1, 0.3, 0.7, 0.95], [1.0] * 4, 0.5)
    assert verdict["status"] == "crossing" and verdict["direction"] == "higher_is_safer"
    assert verdict["boundary"] == pytest.approx(0.15, abs=1e-12)
    assert verdict["within"] == [False, False, True, True]


def test_lower_is_safer_line_crosses_the_upper_band_edge():
    # keep_bad-like: d = (0, 0.2, 1.0, 4.0); +0.5 lies (0.5 - 0.2) / (1.0 - 0.2) = 3/8 of the way from 0.3 to 0.5.
    verdict = breakdown.breakdown([0.1, 0.3, 0.5, 1.0], [1.0, 1.2, 2.0, 5.0], [1.0] * 4, 0.5)
    assert verdict["status"] == "crossing" and verdict["direction"] == "lower_is_safer"
    assert verdict["boundary"] == pytest.approx(0.375, abs=1e-12)
    assert verdict["crossings"] == pytest.approx([0.375])


def test_each_point_is_judged_against_its_own_generation0_median():
    # gen0 = (2, 4), final = (2, 1): d = (0, -0.75); -0.5 lies 2/3 of the way. Against a shared gen0 of 2 the second
    # point has d = -0.5, on the edge and so inside: the per-point baseline decides.
    verdict = breakdown.breakdown([0.0, 1.0], [2.0, 1.0], [2.0, 4.0], 0.5)
    assert verdict["boundary"] == pytest.approx(2 / 3, abs=1e-12) and verdict["direction"] == "lower_is_safer"
    assert breakdown.breakdown([0.0, 1.0], [2.0, 1.0], [2.0, 2.0], 0.5)["status"] == "always_within"


def test_negative_generation0_level_uses_a_band_of_its_magnitude():
    # A log-likelihood-like metric: gen0 = -2, band [-3, -1]; finals -2, -4 -> d = (0, -1); -0.5 at half way.
    verdict = breakdown.breakdown([0.0, 1.0], [-2.0, -4.0], [-2.0, -2.0], 0.5)
    assert verdict["boundary"] == pytest.approx(0.5, abs=1e-12)


def test_non_monotone_lines():
    values = [0.0, 1.0, 2.0, 3.0]
    finals = [1.0, 0.2, 0.2, 1.0]  # d = (0, -0.8, -0.8, 0): out in the middle, in at both ends
    auto = breakdown.breakdown(values, finals, [1.0] * 4, 0.5)
    assert auto["status"] == "non_monotone" and auto["boundary"] is None
    # 0 -> 1: d hits -0.5 at 0.5/0.8 = 0.625; 2 -> 3: at 2 + 0.3/0.8 = 2.375.
    assert auto["crossings"] == pytest.approx([0.625, 2.375], abs=1e-12)
    # A named direction picks the crossing next to its safe end.
    assert breakdown.breakdown(values, finals, [1.0] * 4, 0.5, "higher_is_safer")["boundary"] == pytest.approx(2.375)
    assert breakdown.breakdown(values, finals, [1.0] * 4, 0.5, "lower_is_safer")["boundary"] == pytest.approx(0.625)
    # out, in, out, in, in: auto sees the top end safe; the boundary is the last crossing, 3 crossings listed.
    wiggle = breakdown.breakdown([0, 1, 2, 3, 4], [0.0, 1.0, 0.0, 1.0, 1.0], [1.0] * 5, 0.5)
    assert wiggle["direction"] == "higher_is_safer" and wiggle["boundary"] == pytest.approx(2.5)
    assert wiggle["crossings"] == pytest.approx([0.5, 1.5, 2.5])


def test_lines_without_a_crossing_report_none():
    in_band = breakdown.breakdown([0.0, 1.0, 2.0], [1.0, 1.1, 0.9], [1.0] * 3, 0.5)
    assert (in_band["status"], in_band["boundary"], in_band["crossings"]) == ("always_within", None, [])
    out = breakdown.breakdown([0.0, 1.0, 2.0], [0.1, 0.2, 0.3], [1.0] * 3, 0.5)
    assert (out["status"], out["boundary"]) == ("never_within", None)
    wrong_side = breakdown.breakdown([0.0, 1.0], [1.0, 0.0], [1.0, 1.0], 0.5, "higher_is_safer")
    assert (wrong_side["status"], wrong_side["boundary"]) == ("collapses_at_safe_end", None)
    assert breakdown.breakdown([0.0, 1.0], [1.0, 0.0], [0.0, 1.0], 0.5)["status"] == "no_baseline"
    # A generation-0 level inside half its own 10-90% spread over seeds (an error to the truth, ~0 +- noise) is not
    # resolved from 0: no relative band. Level 0.01 with spread 0.02 is on that edge; spread 0.019 resolves it.
    assert (
        breakdown.breakdown([0.0, 1.0], [1.0, 0.0], [0.01, 0.01], 0.5, spreads=[0.02, 0.02])["status"] == "no_baseline"
    )
    assert breakdown.breakdown([0.0, 1.0], [0.01, 1.0], [0.01, 0.01], 0.5, spreads=[0.019, 0.019])["boundary"] == (
        pytest.approx(0.5 / 99, abs=1e-12)  # d = (0, 99): +0.5 at 0.5/99
    )
    # Tolerance widens the band: the same line is within 0.95 everywhere.
    assert breakdown.breakdown([0.0, 1.0, 2.0], [0.1, 0.2, 0.3], [1.0] * 3, 0.95)["status"] == "always_within"


def hand_made(report: dict | None = None) -> Results:
    """keep_bad in (0.1, 0.3, 0.5) x schedule end (NaN under 'constant', 0.0 under 'linear') x 5 seeds, 2 generations.

    gen0 = 1 everywhere; the final value of seed k is level(keep_bad) + 0.1 (k - 2), so the median is the level and the
    10% / 90% quantiles are level -+ 0.16 (linear interpolation at positions 0.4 and 3.6 of 5 sorted values).
    """
    levels = {0.1: 1.0, 0.3: 1.3, 0.5: 2.1}  # d = 0, 0.3, 1.1: +0.5 crossed at 0.3 + 0.2 * 0.2 / 0.8 = 0.35
    keep_bad, schedule, end, seed, final = [], [], [], [], []
    for name, value in (("constant", np.nan), ("linear", 0.0)):
        for psi, level in levels.items():
            for k in range(5):
                keep_bad.append(psi), schedule.append(name), end.append(value), seed.append(k)
                final.append(level + 0.1 * (k - 2) + (0.0 if name == "constant" else 0.5))
    metric = np.stack([np.ones(30), np.ones(30), final], axis=1)
    failed = np.zeros_like(metric)
    failed[-1, 1] = 1.0  # one failed chain (linear, keep_bad 0.5, seed 4) is left out of its point
    config = {"model": {"name": "hand_made"}, "num_generations": 2, "report": report or {}}
    knobs = {
        "seed": np.asarray(seed),
        "keep_bad": np.asarray(keep_bad),
        "final_real_fraction": np.asarray(end),
        "real_fraction_schedule": np.asarray(schedule),
    }
    metrics = {"trace_ratio": metric, "curation_kept_fraction": np.full_like(metric, 0.5), "failed": failed}
    return Results(metrics, knobs, config, np.arange(30))


def test_final_vs_knob_is_median_and_quantiles_over_seeds_with_nan_knobs_kept_together():
    lines = breakdown.final_vs_knob(hand_made(), "trace_ratio", "keep_bad")
    assert [line["labels"]["real_fraction_schedule"] for line in lines] == ["constant", "linear"]
    constant, linear = lines
    assert [p[0] for p in constant["points"]] == [0.1, 0.3, 0.5] and constant["baselines"] == [1.0] * 3
    for (_, median, q10, q90, chains), level in zip(constant["points"], (1.0, 1.3, 2.1)):
        assert chains == 5
        assert (median, q10, q90) == pytest.approx((level, level - 0.16, level + 0.16), abs=1e-12)
    assert [p[4] for p in linear["points"]] == [5, 5, 4]  # the failed chain is excluded
    finals = 2.1 + 0.5 + 0.1 * (np.arange(4) - 2)
    assert linear["points"][2][1:4] == pytest.approx(tuple(np.quantile(finals, [0.5, 0.1, 0.9])), abs=1e-12)
    assert breakdown.line_breakdown(constant, 0.5)["boundary"] == pytest.approx(0.35, abs=1e-12)
    # linear: medians 1.5, 1.8, 2.55 (4 chains) -> d = 0.5 (on the edge: inside), 0.8, 1.55: the crossing is the edge
    # point itself.
    assert breakdown.line_breakdown(linear, 0.5)["boundary"] == pytest.approx(0.1, abs=1e-12)
    # final_real_fraction takes one finite value (0.0): not a strength axis; keep_bad is.
    assert breakdown.numeric_swept_knobs(hand_made()) == ["keep_bad"]


def test_report_sections_list_each_lines_breakdown_and_draw_the_figure(tmp_path):
    results = hand_made({"reference_lines": (("keep_bad", 0.4, "theory"),), "directions": {"keep_bad": "auto"}})
    os.makedirs(tmp_path / "plots")
    text = "\n".join(plots.strength_sections(results, str(tmp_path)))
    assert "| real_fraction_schedule=constant | keep_bad = 0.35 (lower is safer) | 0.35 |" in text
    # One row per swept value: its chains, generation-0 and final medians, and whether it lies within the band.
    for value, final, within in (("0.1", "1 [0.84, 1.16]", "yes"), ("0.3", "1.3 [1.14, 1.46]", "yes")):
        assert f"| real_fraction_schedule=constant | {value} | 5 | 1 | {final} | {within} |" in text
    assert "| real_fraction_schedule=constant | 0.5 | 5 | 1 | 2.1 [1.94, 2.26] | no |" in text
    assert "curation_kept_fraction" not in text  # bookkeeping metric, not named
    assert os.listdir(tmp_path / "plots") == ["trace_ratio_final_vs_keep_bad.png"]
    assert "(plots/trace_ratio_final_vs_keep_bad.png)" in text
    # Naming the bookkeeping metric draws it; a wider band moves the constant line's crossing to 0.3 + 0.2 * 0.7/0.8.
    named = hand_made({"metrics": ("curation_kept_fraction", "trace_ratio"), "collapse_tolerance": 1.0})
    text = "\n".join(plots.strength_sections(named, str(tmp_path), make_plots=False))
    assert "### curation_kept_fraction vs keep_bad" in text and "keep_bad = 0.475 (lower is safer)" in text
    report = plots.write_report(str(tmp_path), results)
    assert "![trace_ratio at generation 2 vs keep_bad](plots/trace_ratio_final_vs_keep_bad.png)" in open(report).read()


def test_a_per_metric_tolerance_moves_only_that_metrics_breakdown(tmp_path):
    # {metric: band}: trace_ratio gets the wide band (crossing 0.475, as with a global 1.0 above), the others keep 0.5.
    both = ("curation_kept_fraction", "trace_ratio")
    results = hand_made({"metrics": both, "collapse_tolerance": {"trace_ratio": 1.0}})
    settings = breakdown.settings(results.config, list(results.metrics))
    assert (settings.tolerance("trace_ratio"), settings.tolerance("curation_kept_fraction")) == (1.0, 0.5)
    text = "\n".join(plots.strength_sections(results, str(tmp_path), make_plots=False))
    assert "t = 0.5, trace_ratio: 1)" in text
    trace = text[text.index("### trace_ratio vs keep_bad") :]
    assert "keep_bad = 0.475 (lower is safer)" in trace
    narrow = "\n".join(plots.strength_sections(hand_made({"metrics": both}), str(tmp_path), make_plots=False))
    assert "keep_bad = 0.35 (lower is safer)" in narrow[narrow.index("### trace_ratio vs keep_bad") :]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"metrics": ("w2",)}, "report.metrics: 'w2' is not a metric"),
        ({"collapse_tolerance": 0.0}, "report.collapse_tolerance: must be a number > 0"),
        ({"collapse_tolerance": {"trace_ratio": -0.1}}, "report.collapse_tolerance.trace_ratio: must be a number > 0"),
        ({"collapse_tolerance": {"w2": 0.2}}, "report.collapse_tolerance.w2: not a metric of this run"),
        ({"reference_lines": (("keep_bad", "p*"),)}, r"report.reference_lines: each entry must be \(knob, value"),
        ({"directions": {"keep_bad": "up"}}, "report.directions.keep_bad: 'up' is not one of"),
        ({"tolerance": 0.5}, "report.tolerance: unknown field"),
    ],
)
def test_bad_report_settings_raise_one_line_errors(report, message):
    with pytest.raises(ValueError, match=message):
        breakdown.settings(hand_made(report).config, ["trace_ratio", "failed"])


def test_a_bad_report_block_is_refused_before_the_run_writes_anything(gaussian_config, tmp_path):
    config = runner.as_config({}, gaussian_config)
    config.report = ml_collections.ConfigDict({"collapse_tolerance": -1.0})
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"config\.report\.collapse_tolerance"):
        runner.run(config, str(workdir))
    assert not workdir.exists()
