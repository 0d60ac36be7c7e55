"""Aggregation: shards of a sweep merge into the single job's table, partial sweeps list what is missing."""

import importlib.util
import os

import numpy as np
import pytest

from collapse_jax.analysis import aggregate, breakdown, plots, results, sweep_report
from collapse_jax.host import runner
from experiments.configs import gaussian
from launch import shards


def load_config(path: str):
    """A shard's generated wrapper config, loaded the way experiments.main's config flag does."""
    spec = importlib.util.spec_from_file_location("shard_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


# Two static groups x two real fractions x 3 seeds = 12 chains; 3 shards of 4 chains, shard 1 spans both groups.
SWEEP = {
    "regime.name": ("replace", "accumulate"),
    "regime.real_fraction": (0.0, 0.2),
    "seeds": 3,
    "num_generations": 4,
    "chunk_generations": 2,
    "chain_block": 8,
    "make_plots": False,
    "model.test_size": 1000,
}


@pytest.fixture(scope="module")
def sweep_config():
    return runner.as_config(SWEEP, gaussian.get_config())


@pytest.fixture(scope="module")
def whole(sweep_config) -> results.Results:
    """The sweep as one in-memory job: what every aggregate must reproduce."""
    return runner.simulate(sweep_config)


def flat(tree: dict, prefix: str = "") -> dict:
    """{'a.b': value} from a nested dict."""
    out = {}
    for key, value in tree.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def planned(config, root: str, num_jobs: int = 3) -> list:
    """Plan and write a sweep of `config`, with its differences from the shipped config as the launch overrides."""
    shipped = flat(gaussian.get_config().to_dict())
    overrides = {path: value for path, value in flat(config.to_dict()).items() if shipped[path] != value}
    manifest, shard_list = shards.plan(config, gaussian.__file__, None, overrides, num_jobs, root)
    shards.write(manifest, shard_list, root)
    return shard_list


def assert_table_matches(table: dict, whole: results.Results, chain_ids: np.ndarray) -> None:
    """Every (chain, generation) row of the table equals the single job's value, and only those chains appear."""
    assert sorted(set(table["chain_id"].tolist())) == sorted(chain_ids.tolist())
    for name, values in whole.metrics.items():
        expected = values[table["chain_id"], table["generation"]]
        np.testing.assert_array_equal(table[name].astype(np.float32), expected, err_msg=name)
    for name in ("seed", "real_fraction"):
        np.testing.assert_array_equal(table[name], whole.knobs[name][table["chain_id"]], err_msg=name)
    np.testing.assert_array_equal(table["regime"].astype(str), whole.knobs["regime"][table["chain_id"]])


def test_shards_aggregate_into_the_single_job_table_and_a_partial_sweep_lists_what_is_missing(
    sweep_config, whole, tmp_path
):
    root = str(tmp_path / "sweep")
    shard_list = planned(sweep_config, root)
    for index in (0, 2):
        runner.run(load_config(shard_list[index].config_path), shard_list[index].workdir)
    path = sweep_report.report([root], make_plots=False)
    text = open(path).read()
    # experiments.report's report.md opens with the Collapse profile too: one row per group and metric.
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[:2] == ["# Sweep report: gaussian", "## Collapse profile"]
    rows = [line for line in text.split("## Collapse profile")[1].split("\n\n")[1].splitlines()[2:]]
    merged = aggregate.load_workdirs([root])
    assert len(rows) == len(merged.profile()) == len(merged.knob_groups()) * 5  # the Gaussian's 5 metrics
    assert "INCOMPLETE" in text and "| 1 | 4..7 | not started |" in text
    assert "Missing chains (shard not started): 4..7." in text
    table = aggregate.read_table(os.path.join(root, "results.parquet"))
    assert_table_matches(table, whole, np.r_[0:4, 8:12])

    # Shard 1 stopped after generation 2 of 4 (a preempted job): listed as partial, its rows are the real ones only.
    partial = load_config(shard_list[1].config_path)
    partial.num_generations = 2
    runner.run(partial, shard_list[1].workdir)
    path = sweep_report.report([root])
    text = open(path).read()
    assert "| 1 | 4..7 | partial: generations 0..2 of 4 |" in text
    assert "Chains with unfinished generations: 4..7." in text
    table = aggregate.read_table(os.path.join(root, "results.parquet"))
    assert table["generation"][table["chain_id"] == 5].tolist() == [0, 1, 2]
    assert_table_matches(table, whole, np.arange(12))
    # Both figure kinds exist and report.md links every figure it drew.
    drawn = sorted(os.listdir(os.path.join(root, "plots")))
    assert "trace_ratio_vs_generation.png" in drawn and "trace_ratio_final_vs_real_fraction.png" in drawn
    assert sorted(f for f in drawn if f"(plots/{f})" in text) == drawn


def test_final_generation_vs_real_fraction_is_the_median_and_quantiles_over_seeds(whole):
    curves = sweep_report.final_vs_real_fraction(whole, "trace_ratio")
    assert [c["labels"] for c in curves] == [{"regime": "replace"}, {"regime": "accumulate"}]
    for curve in curves:
        for rho, median, q10, q90, count in curve["points"]:
            chains = (whole.knobs["regime"] == curve["labels"]["regime"]) & (whole.knobs["real_fraction"] == rho)
            final = whole.metrics["trace_ratio"][chains, -1].astype(np.float64)
            assert count == 3
            # Same 3 float32 values, same linear-interpolation quantile: equal up to float32 -> float64 rounding.
            np.testing.assert_allclose([median, q10, q90], np.quantile(final, [0.5, 0.1, 0.9]), rtol=1e-6)


def test_unrelated_runs_merge_with_a_source_column_and_keep_their_groups_apart(gaussian_config, tmp_path):
    first, second = str(tmp_path / "rho0"), str(tmp_path / "rho_half")
    a = runner.run(gaussian_config, first)
    b = runner.run(runner.as_config({"regime.real_fraction": 0.5, "seeds": 4}, gaussian_config), second)
    with pytest.raises(ValueError, match="--output: required"):
        sweep_report.report([first, second])
    sweep_report.report([first, second], output=str(tmp_path / "both"), table_format="csv")
    table = aggregate.read_table(str(tmp_path / "both" / "results.csv"))
    assert sorted(set(table["source"].tolist())) == ["rho0", "rho_half"]
    for name, run in (("rho0", a), ("rho_half", b)):
        rows = table["source"] == name
        expected = run.metrics["trace_ratio"][
            table["chain_id"][rows].astype(int), table["generation"][rows].astype(int)
        ]
        np.testing.assert_array_equal(table["trace_ratio"][rows].astype(np.float32), expected)
    merged = aggregate.merge([a, b], ["rho0", "rho_half"])
    assert len(merged.knob_groups()) == 2 and merged.num_chains == 12


def test_report_input_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="--workdir: .* is not a directory"):
        sweep_report.report([str(tmp_path / "absent")])
    with pytest.raises(ValueError, match="--workdir: no run with results"):
        sweep_report.report([str(tmp_path)])
    with pytest.raises(ValueError, match="--format"):
        aggregate.write_table({"a": np.zeros(1)}, str(tmp_path / "t"), "xlsx")


def test_sweep_report_draws_final_vs_each_swept_knob_for_the_named_metrics_with_breakdowns(whole, tmp_path):
    # The fixture's sweep as one run, with a report block: trace_ratio only, a reference line on the real_fraction axis.
    named = results.Results(
        whole.metrics,
        whole.knobs,
        {**whole.config, "report": {"metrics": ["trace_ratio"], "reference_lines": [["real_fraction", 0.1, "p"]]}},
        whole.chain_ids,
    )
    output = str(tmp_path)
    os.makedirs(os.path.join(output, "plots"))
    text = "\n".join(plots.strength_sections(named, output))
    # real_fraction is the only numeric swept knob (regime is a string label): one figure, for the named metric only.
    assert os.listdir(os.path.join(output, "plots")) == ["trace_ratio_final_vs_real_fraction.png"]
    assert "### trace_ratio vs real_fraction" in text and text.count("### ") == 1  # w2_sq_to_truth etc. not named
    # One table row per regime, whose breakdown cell is that line's analysis.
    for line in breakdown.final_vs_knob(whole, "trace_ratio", "real_fraction"):
        verdict = breakdown.line_breakdown(line, breakdown.DEFAULT_TOLERANCE)
        row = f"| regime={line['labels']['regime']} | {plots._boundary_text('real_fraction', verdict)} |"
        assert row in text
