"""Tidy tables: to_dataframe / to_xarray hold exactly the stored arrays, with true generation numbers, right knobs and
labels for mixed static/dynamic and sharded sweeps, and failed chains flagged; examples/analysis.py runs on a sweep."""

import importlib.util
import os
import runpy
import sys

import numpy as np
import pandas as pd
import pytest

from collapse_jax.analysis import aggregate, frames, results, sweep_report
from collapse_jax.host import runner, sweep
from experiments.configs import gaussian
from launch import shards

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# regime static (two compiles) x real fraction x sampling bias per-chain knobs, 3 seeds: 24 chains. record_every = 4
# keeps generations 0, 4, ..., 96 and the last, 98. lambda = 3 multiplies the fitted variance by ~3 per generation, so
# replace chains without real data overflow float32 (exp(88.7)) near generation 85: failed chains.
MIXED = {
    "regime.name": ("replace", "accumulate"),
    "regime.real_fraction": (0.0, 0.3),
    "model.sampling_bias": (1.0, 3.0),
    "samples_per_generation": 20,
    "seeds": 3,
    "num_generations": 98,
    "record_every": 4,
    "chunk_generations": 49,
    "chain_block": 12,
    "checkpoint_every": 98,
    "make_plots": False,
    "model.test_size": 1000,
}
RECORDED = [*range(0, 97, 4), 98]


@pytest.fixture(scope="module")
def mixed_config():
    return runner.as_config(MIXED, gaussian.get_config())


@pytest.fixture(scope="module")
def mixed_workdir(mixed_config, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("mixed"))
    runner.run(mixed_config, workdir)
    return workdir


@pytest.fixture(scope="module")
def mixed(mixed_workdir) -> results.Results:
    return results.load(mixed_workdir)


def rows_of(run: results.Results, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(chain index, column index) in the run's arrays of every row of the frame."""
    position = {int(c): i for i, c in enumerate(run.chain_ids)}
    chain = np.asarray([position[c] for c in frame.chain_id])
    column = np.searchsorted(run.generations, frame.generation.to_numpy())
    np.testing.assert_array_equal(run.generations[column], frame.generation)  # every row's generation was recorded
    return chain, column


def assert_frame_is_the_arrays(run: results.Results, frame: pd.DataFrame) -> None:
    """Every cell of the frame equals the array entry it came from (metrics bit for bit, knobs, failed)."""
    chain, column = rows_of(run, frame)
    for name in run.metrics:
        if name != "failed":
            np.testing.assert_array_equal(frame[name].to_numpy(), run.metrics[name][chain, column], err_msg=name)
    np.testing.assert_array_equal(frame.failed.to_numpy(), run.metrics["failed"][chain, column] == 1)
    for name, values in run.knobs.items():
        np.testing.assert_array_equal(frame[name].to_numpy(), values[chain], err_msg=name)


def test_every_value_of_the_frame_equals_the_stored_arrays_with_true_generation_numbers(mixed):
    frame = mixed.to_dataframe()
    metrics = [name for name in mixed.metrics if name != "failed"]
    assert list(frame.columns) == ["chain_id", *mixed.knobs, "generation", "failed", *metrics]
    np.testing.assert_array_equal(mixed.generations, RECORDED)
    # A finished run: every chain x recorded generation, chain by chain, generations in order.
    assert len(frame) == 24 * len(RECORDED)
    np.testing.assert_array_equal(frame.generation, np.tile(RECORDED, 24))
    np.testing.assert_array_equal(frame.chain_id, np.repeat(np.arange(24), len(RECORDED)))
    assert frame.trace_ratio.dtype == np.float32 and frame.failed.dtype == bool
    assert_frame_is_the_arrays(mixed, frame)


def test_knobs_and_static_labels_of_a_mixed_sweep_are_each_chains_own(mixed, mixed_config):
    frame = mixed.to_dataframe(metrics=["trace_ratio"])
    assert list(frame.columns) == [
        "chain_id",
        "real_fraction",
        "sampling_bias",
        "seed",
        "regime",
        "samples_per_generation",
        "generation",
        "failed",
        "trace_ratio",
    ]
    # The expansion of the config (not the stored run) says which chain got which label and knob values.
    for group in sweep.expand(mixed_config):
        rows = frame[frame.chain_id.isin(group.chain_ids)]
        assert len(rows) == len(group.chain_ids) * len(RECORDED)
        assert set(rows.regime) == {group.labels["regime"]}
        position = np.searchsorted(group.chain_ids, rows.chain_id)
        for name, values in group.knobs.items():
            np.testing.assert_array_equal(rows[name].to_numpy(), values[position], err_msg=name)
    # The three-line recipe: 2 regimes x 2 real fractions x 2 sampling biases, 3 seeds each.
    final = frame[frame.generation == 98].groupby(mixed.group_fields).trace_ratio
    assert final.size().tolist() == [3] * 8


def test_failed_chains_are_flagged_from_their_failure_on_and_their_metrics_are_nan(mixed):
    frame = mixed.to_dataframe()
    first = mixed.event_generation["failed"][frame.chain_id.to_numpy()]
    np.testing.assert_array_equal(frame.failed, (first >= 0) & (frame.generation >= first))
    assert frame.trace_ratio[frame.failed].isna().all() and frame.trace_ratio[~frame.failed].notna().all()
    failed = frame.groupby("chain_id").failed.any()
    knobs = frame.groupby("chain_id")[["regime", "real_fraction", "sampling_bias"]].first()
    # lambda = 1 never overflows; replace with lambda = 3 and no real data does: log variance grows by
    # log 3 - 1/M-ish ~ 1.05 per generation, past float32's 88.7 by generation ~85 < 98 for all 3 seeds.
    assert not failed[knobs.sampling_bias == 1.0].any()
    assert failed[(knobs.regime == "replace") & (knobs.real_fraction == 0.0) & (knobs.sampling_bias == 3.0)].all()


def test_generation_selection_takes_generation_numbers_and_refuses_unrecorded_ones(mixed):
    def selected(generations):
        return sorted(set(mixed.to_dataframe(["trace_ratio"], generations).generation))

    assert selected(-1) == [98] and selected(-2) == [96] and selected(8) == [8] and selected([0, 8, 98]) == [0, 8, 98]
    assert selected(slice(None, None, 24)) == [0, 24, 48, 72, 96] and selected(slice(90, None)) == [92, 96, 98]
    assert selected(range(0, 99, 48)) == [0, 48, 96] and selected([]) == []
    last = mixed.to_dataframe(generations=-1)
    assert_frame_is_the_arrays(mixed, last)
    np.testing.assert_array_equal(last.trace_ratio, mixed.metrics["trace_ratio"][:, -1])
    with pytest.raises(ValueError, match=r"^generations: 5 was not recorded \(this run kept generations 0, 4, 8, 12,"):
        mixed.to_dataframe(generations=[4, 5])
    with pytest.raises(ValueError, match="^generations: a slice"):
        mixed.to_dataframe(generations=slice(-10, None))
    with pytest.raises(ValueError, match="^metrics: 'trace' is not a metric of this run"):
        mixed.to_dataframe(metrics=["trace"])


def test_the_csv_table_reads_back_as_the_frame_failed_column_included(mixed, tmp_path):
    path = aggregate.write_table(aggregate.long_table(mixed), str(tmp_path / "results"), "csv")
    table = aggregate.read_table(path)
    frame = mixed.to_dataframe()
    assert list(table) == list(frame.columns) and table["failed"].dtype == bool and table["failed"].any()
    for name, column in table.items():
        np.testing.assert_array_equal(column, frame[name].to_numpy(), err_msg=name)  # repr of a float round-trips


def test_a_frame_above_the_row_limit_is_refused_in_one_line_naming_its_size(mixed, monkeypatch):
    message = r"^to_dataframe: 24 chains x 26 generations = 624 rows, above max_rows = 623; select generations"
    with pytest.raises(ValueError, match=message):
        mixed.to_dataframe(max_rows=623)
    assert len(mixed.to_dataframe(max_rows=624)) == 624
    assert len(mixed.to_dataframe(generations=-1, max_rows=24)) == 24
    monkeypatch.setattr(frames, "MAX_ROWS", 100)  # the session-wide default
    with pytest.raises(ValueError, match="624 rows, above max_rows = 100"):
        mixed.to_dataframe()
    assert len(mixed.to_dataframe(max_rows=np.inf)) == 624


def test_the_dataset_holds_the_arrays_with_knobs_as_chain_coordinates(mixed):
    ds = mixed.to_xarray()
    assert dict(ds.sizes) == {"chain": 24, "generation": 26}
    np.testing.assert_array_equal(ds.generation, RECORDED)
    np.testing.assert_array_equal(ds.chain_id, mixed.chain_ids)
    for name in mixed.metrics:
        if name != "failed":
            np.testing.assert_array_equal(ds[name].values, mixed.metrics[name], err_msg=name)
    np.testing.assert_array_equal(ds.failed.values, mixed.metrics["failed"] == 1)
    np.testing.assert_array_equal(ds.failed_generation, mixed.event_generation["failed"])
    for name, values in mixed.knobs.items():
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
    # One dimension per knob: 2 x 2 x 2 x 3 seeds, and the frame's rows are the same cells.
    cube = ds.set_index(chain=["regime", "real_fraction", "sampling_bias", "seed"]).unstack("chain")
    assert cube.trace_ratio.sizes == {"generation": 26, "regime": 2, "real_fraction": 2, "sampling_bias": 2, "seed": 3}
    cell = cube.trace_ratio.sel(regime="accumulate", real_fraction=0.3, sampling_bias=1.0, seed=2, generation=48)
    frame = mixed.to_dataframe(generations=48)
    row = frame[
        (frame.regime == "accumulate") & (frame.real_fraction == 0.3) & (frame.sampling_bias == 1) & (frame.seed == 2)
    ]
    assert float(cell) == row.trace_ratio.item()
    sub = mixed.to_xarray(metrics=["trace_ratio"], generations=slice(None, None, 48))
    np.testing.assert_array_equal(sub.generation, [0, 48, 96])
    np.testing.assert_array_equal(sub.trace_ratio.values, mixed.metrics["trace_ratio"][:, [0, 12, 24]])


def test_a_missing_pandas_or_xarray_names_the_extra_in_one_line(mixed, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` meets when it is not installed
    monkeypatch.setitem(sys.modules, "xarray", None)
    extra = r"part of the analysis extra: pip install -e '\.\[analysis\]'$"
    with pytest.raises(ImportError, match=r"^Results\.to_dataframe needs pandas, " + extra):
        mixed.to_dataframe()
    with pytest.raises(ImportError, match=r"^Results\.to_xarray needs xarray, " + extra):
        mixed.to_xarray()
    assert len(frames.long_columns(mixed)["chain_id"]) == 624  # the numpy table needs neither


def _shard_config(path: str):
    """A shard's generated wrapper config, loaded the way experiments.main's config flag does."""
    spec = importlib.util.spec_from_file_location("shard_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def test_a_sharded_sweep_loads_from_its_root_as_one_frame_and_dataset_and_its_parquet_is_the_frame(tmp_path):
    # regime static x real fraction knob, 2 seeds: 8 chains in 2 shards of one static group each (a shard spanning
    # groups merges the same way: test_report; 2 compiles keep this test in seconds).
    overrides = {
        "regime.name": ("replace", "accumulate"),
        "regime.real_fraction": (0.0, 0.2),
        "seeds": 2,
        "num_generations": 3,
        "chunk_generations": 3,
        "chain_block": 4,
        "make_plots": False,
        "model.test_size": 1000,
    }
    config = runner.as_config(overrides, gaussian.get_config())
    root = str(tmp_path / "sweep")
    manifest, shard_list = shards.plan(config, gaussian.__file__, None, overrides, 2, root)
    shards.write(manifest, shard_list, root)
    own = [runner.run(_shard_config(s.config_path), s.workdir) for s in shard_list]
    merged = aggregate.load_workdirs([root])  # the ROOT: its shards merge
    frame = merged.to_dataframe()
    assert sorted(set(frame.chain_id)) == list(range(8)) and len(frame) == 8 * 4
    for shard, run in zip(shard_list, own):  # every cell is the one its shard computed
        rows = frame[(frame.chain_id >= shard.chain_low) & (frame.chain_id < shard.chain_high)]
        assert_frame_is_the_arrays(run, rows)
    for group in sweep.expand(config):  # labels and knobs as the whole (unsharded) sweep assigns them
        rows = frame[frame.chain_id.isin(group.chain_ids)]
        assert set(rows.regime) == {group.labels["regime"]}
        position = np.searchsorted(group.chain_ids, rows.chain_id)
        np.testing.assert_array_equal(rows.real_fraction, group.knobs["real_fraction"][position])
    ds = merged.to_xarray()
    np.testing.assert_array_equal(ds.chain_id, np.arange(8))
    np.testing.assert_array_equal(ds.trace_ratio.values, merged.metrics["trace_ratio"])
    # experiments.report writes the same table as Parquet.
    sweep_report.report([root], make_plots=False)
    stored = pd.read_parquet(os.path.join(root, "results.parquet"))
    pd.testing.assert_frame_equal(stored, frame, check_dtype=False)


def test_the_analysis_example_draws_its_three_figures_from_a_sweep(mixed, mixed_workdir, tmp_path, monkeypatch):
    output = str(tmp_path / "figures")
    monkeypatch.setattr(sys, "argv", ["analysis.py", f"--workdir={mixed_workdir}", f"--output={output}"])
    import matplotlib.pyplot as plt

    try:
        example = runpy.run_path(os.path.join(REPO, "examples", "analysis.py"), run_name="__main__")
    finally:
        plt.close("all")
    for name in ("trace_ratio_vs_generation", "final_trace_ratio_vs_real_fraction", "trace_ratio_per_chain"):
        assert os.path.getsize(os.path.join(output, f"{name}.png")) > 10_000, name
    # Figure 3's legend counts the failed chains of replace, rho = 0: the run's own count (the lambda = 3 seeds).
    chains = (mixed.knobs["regime"] == "replace") & (mixed.knobs["real_fraction"] == 0.0)
    assert example["failed"] == int(mixed.failed[chains].sum()) == 3
    # Figure 2's medians are the run's final-generation medians over seeds.
    medians = example["curves"].xs(0.5, level=-1)
    for (regime, rho), median in medians.items():
        chosen = (mixed.knobs["regime"] == regime) & (mixed.knobs["real_fraction"] == rho)
        chosen &= mixed.knobs["sampling_bias"] == 1.0
        assert median == pytest.approx(np.median(mixed.metrics["trace_ratio"][chosen, -1].astype(np.float64)))
    # The example's own sweep (run when --workdir is empty) is a valid config.
    assert len(sweep.expand(runner.as_config(example["SWEEP"], gaussian.get_config()))) == 2
