"""The results contract: old (.npz) and new (append-only) workdirs load alike; columns say which generation they are."""

import os
import shutil
import warnings

import numpy as np
import pytest
from conftest import assert_resumed

from collapse_jax.analysis import results
from collapse_jax.host import runner
from collapse_jax.store import metric_log, workdir_io


def assert_same_metrics(a, b):
    assert a.metrics.keys() == b.metrics.keys()
    np.testing.assert_array_equal(a.generations, b.generations)
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)


def write_old_format(workdir: str, config, history: results.Results) -> None:
    """A workdir as runs before append-only metrics left it: run.json and metrics/group_000.npz [chains, G + 1]."""
    os.makedirs(os.path.join(workdir, "metrics"), exist_ok=True)
    record = workdir_io.run_record(config, runner.sweep.expand(config))
    del record["config"]["record_every"]  # the field did not exist then
    workdir_io.write_json(os.path.join(workdir, workdir_io.RUN_FILE), record)
    np.savez(workdir_io.metrics_path(workdir, 0), **history.metrics)


def test_a_workdir_written_before_append_only_metrics_loads_with_every_generation(gaussian_config, tmp_path):
    config = runner.as_config({"model.sampling_bias": (1.0, 1e39)}, gaussian_config)
    straight = runner.simulate(config)
    write_old_format(str(tmp_path), config, straight)
    old = results.load(str(tmp_path))
    assert_same_metrics(straight, old)
    np.testing.assert_array_equal(old.generations, np.arange(7))
    np.testing.assert_array_equal(old.event_generation["failed"], straight.event_generation["failed"])
    assert old.failed.sum() == 8


def test_a_run_from_before_append_only_metrics_resumes_and_its_npz_becomes_metric_files(gaussian_config, tmp_path):
    workdir = str(tmp_path / "w")
    part = runner.run(runner.as_config({"num_generations": 3}, gaussian_config), workdir)
    shutil.rmtree(metric_log.directory(workdir, 0))
    write_old_format(workdir, runner.as_config({"num_generations": 3}, gaussian_config), part)
    resumed = runner.run(gaussian_config, workdir)
    assert_resumed(workdir, 3, gaussian_config.num_generations)
    assert_same_metrics(runner.simulate(gaussian_config), resumed)
    assert not os.path.exists(workdir_io.metrics_path(workdir, 0))


def test_a_record_every_run_reports_merges_and_tabulates_real_generations(gaussian_config, tmp_path):
    from collapse_jax.analysis import aggregate, plots

    sparse = runner.simulate(runner.as_config({"num_generations": 10, "record_every": 4}, gaussian_config))
    report = open(plots.write_report(str(tmp_path), sparse)).read()
    assert "generations computed: 0..10 of 10" in report and "@10" in report
    # The Collapse profile reads true generation numbers: the last recorded one is 10, onsets are recorded ones.
    assert {row["final_generation"] for row in sparse.profile()} == {10}
    assert {row["onset"] for row in sparse.profile()} <= {None, 4, 8, 10}
    assert "onset is the first recorded one" in report
    table = aggregate.long_table(sparse)
    assert sorted(set(table["generation"].tolist())) == [0, 4, 8, 10]
    merged = aggregate.merge([sparse, sparse], ["a", "b"])
    np.testing.assert_array_equal(merged.generations, [0, 4, 8, 10])
    assert aggregate.finished_generations(merged) == 10


def _nanquantile_per_column(values: np.ndarray) -> np.ndarray:
    """The summary's quantiles as numpy's nanquantile computes them: one 1-D quantile per column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        return np.nanquantile(values, results.SUMMARY_QUANTILES, axis=0)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf between two infinite order statistics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantiles_over_chains_equal_nanquantile_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal((501, 40)) ** 3).astype(dtype)
    values[:, 30:] = np.nan  # generations not computed yet
    values[7, 3] = np.nan  # a value undefined for one chain
    values[:5, 4] = np.inf  # a diverged value: an order statistic like any other
    values[:, 5] = 2.5  # ties
    expected = _nanquantile_per_column(values)
    actual = results.quantiles_over_chains(values, results.SUMMARY_QUANTILES)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    clean = values[:, :30][:, np.isfinite(values[:, :30]).all(axis=0)]
    np.testing.assert_array_equal(
        results.quantiles_over_chains(clean, results.SUMMARY_QUANTILES), _nanquantile_per_column(clean)
    )
    one_chain = values[:1]
    np.testing.assert_array_equal(
        results.quantiles_over_chains(one_chain, results.SUMMARY_QUANTILES), _nanquantile_per_column(one_chain)
    )


def test_summaries_equal_the_per_group_nanquantile_of_the_chains_that_did_not_fail():
    rng = np.random.default_rng(1)
    values = rng.lognormal(size=(40, 9)).astype(np.float32)
    failed = np.zeros((40, 9), np.float32)
    failed[3, 5:] = 1.0  # chain 3 fails at generation 5: left out of every column
    values[3, 5:] = np.nan
    values[:, 8] = np.nan  # a generation not computed yet
    knobs = {"seed": np.arange(40) % 20, "real_fraction": np.repeat([0.0, 0.5], 20)}
    run = results.Results({"x": values, "failed": failed}, knobs, {}, np.arange(40))
    for row, (_, indices) in zip(run.summary("x"), run.knob_groups()):
        kept = values[indices][~run.failed[indices]]
        q10, median, q90 = _nanquantile_per_column(kept)
        for name, expected in (("q10", q10), ("median", median), ("q90", q90)):
            np.testing.assert_array_equal(row[name], expected, err_msg=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(row["mean"], np.nanmean(kept, axis=0))
        assert row["chains"] == len(kept)
    assert [row["chains"] for row in run.summary("x")] == [19, 20]
    assert run.summaries(["x"])["x"][0]["labels"] == run.summary("x")[0]["labels"]
