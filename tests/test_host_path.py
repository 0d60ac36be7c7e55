"""The host path: the ordered background writer, chunk_generations "auto", the progress clock, a family's working bytes.

Bit identity across chunk lengths, resumes and kills is asserted in test_runner/test_checkpoint; here, the pieces.
"""

import dataclasses
import threading

import numpy as np
import pytest

from collapse_jax.analysis import results
from collapse_jax.host import devices, runner, sweep
from collapse_jax.store.writer import OrderedWriter


def test_the_writer_runs_jobs_in_order_off_the_calling_thread_and_raises_a_failure_at_the_next_call():
    writer, done, threads = OrderedWriter(), [], set()

    def job(index):
        def run():
            threads.add(threading.current_thread().name)
            if index == 3:
                raise OSError("disk full")
            done.append(index)

        return run

    for index in range(3):
        writer.submit(job(index))
    writer.flush()
    assert done == [0, 1, 2] and threads == {"collapse-writer"}
    writer.submit(job(3))
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    writer.submit(job(4))  # after a failure nothing more is written (a checkpoint never outlives failed rows)
    writer.flush()
    writer.close()
    assert done == [0, 1, 2]


def test_an_inline_writer_runs_each_job_at_once():
    writer, done = OrderedWriter(threaded=False), []
    writer.submit(lambda: done.append(threading.current_thread().name))
    assert done == [threading.current_thread().name]


def test_auto_chunks_hold_the_work_target_within_checkpoint_every_generations_and_memory():
    resolve = devices.resolve_chunk_generations
    # 4e6 chain-generations of work: 400 generations at 10^4 chains, bounded by an integer checkpoint_every.
    assert resolve("auto", 10_000, 7, 1_000, 10) == 10
    assert resolve("auto", 10_000, 7, 1_000, "10") == 10  # a command-line override of the str field
    assert resolve("auto", 10_000, 7, 4_000, 1_000) == 400
    assert resolve("auto", 10_000, 7, 4_000, "auto") == 400  # checkpoints by wall time: the work target alone
    # Chunks split the run evenly (the last chunk computes all K generations): 1,000 in 3 chunks of 334, 650 in 2 of
    # 325 (not 400 + 400).
    assert resolve("auto", 10_000, 7, 1_000, "auto") == 334
    assert resolve("auto", 10_000, 7, 650, "auto") == 325
    assert resolve("auto", 100_000, 7, 1_000, 1_000) == 40
    assert resolve("auto", 100, 7, 4, 10) == 4  # never past the run's end
    assert resolve("auto", 10**6, 7, 1_000, 10) == 4
    assert resolve("auto", 10**7, 7, 1_000, 10) == 1  # at least one generation
    # Metrics cap: 256 MiB / (10^5 chains x 100 metrics x 4 bytes) = 6 generations, below the work target's 40.
    assert resolve("auto", 100_000, 100, 1_000, 1_000) == 6
    assert resolve(7, 10**6, 7, 1_000, 10) == 7  # an integer is kept as it is
    assert resolve("12", 10, 7, 1_000, 10) == 12  # a command-line override of the str field arrives as digits


@pytest.mark.parametrize("field", ["chunk_generations", "checkpoint_every"])
@pytest.mark.parametrize("value", [0, -3, "fast", 2.5, True])
def test_a_bad_auto_or_count_is_one_line_naming_the_field(gaussian_config, field, value):
    config = runner.as_config({field: value}, gaussian_config)
    with pytest.raises(ValueError, match=rf"^config\.{field}: must be 'auto' or an integer >= 1"):
        runner.simulate(config)


def test_auto_checkpoints_follow_the_wall_clock_and_an_integer_counts_generations():
    seconds = devices.CHECKPOINT_SECONDS
    assert not runner._checkpoint_due("auto", 1_000_000, seconds - 0.01)  # many generations, little time: no save
    assert runner._checkpoint_due("auto", 1, seconds)
    assert runner._checkpoint_due(10, 10, 0.0) and not runner._checkpoint_due(10, 9, 1e9)


def test_auto_checkpoints_save_generation_0_and_the_last_of_a_short_run(gaussian_config, tmp_path):
    # A run far shorter than CHECKPOINT_SECONDS: generation 0 and the last generation are its checkpoints; chunks of
    # the whole run (8 chains x 6 generations is far below the work target).
    auto = {"checkpoint_every": "auto", "chunk_generations": "auto"}
    config = runner.as_config({"num_generations": 6, "make_plots": False, **auto}, gaussian_config)
    assert runner.build_engine(sweep.expand(config)[0]).chunk_generations == 6
    saves = []
    original = runner.checkpoint.GroupCheckpoints.save
    try:
        runner.checkpoint.GroupCheckpoints.save = lambda self, g, *a, **k: (saves.append(g), original(self, g, *a, **k))
        runner.run(config, str(tmp_path / "run"))
    finally:
        runner.checkpoint.GroupCheckpoints.save = original
    groups = len(sweep.expand(config))
    assert sorted(saves) == sorted([0, 6] * groups)


def test_auto_chunks_give_the_bits_of_an_explicit_chunk(gaussian_config):
    config = runner.as_config(
        {"chunk_generations": "auto", "num_generations": 7, "checkpoint_every": 3}, gaussian_config
    )
    assert runner.build_engine(sweep.expand(config)[0]).chunk_generations == 3  # 8 chains: checkpoint_every bounds it
    auto = runner.simulate(config)
    fixed = runner.simulate(runner.as_config({"chunk_generations": 7}, config))
    for name, values in auto.metrics.items():
        np.testing.assert_array_equal(values, fixed.metrics[name], err_msg=name)


def test_the_progress_rate_starts_after_the_first_chunk_so_compile_time_leaves_the_eta_alone():
    clock = runner.ProgressClock(seconds=5.0)
    assert clock.rate(100.0, 10) is None  # the first chunk (compile included): no rate yet
    assert clock.due(100.0, 10, 1_000)  # but a line, so a user sees the run has started
    assert clock.rate(102.0, 30) == pytest.approx(10.0)  # 20 generations in 2 s since the first chunk's end
    assert not clock.due(102.0, 30, 1_000)  # within the cadence: no line
    assert clock.due(105.5, 65, 1_000)
    assert clock.due(105.6, 1_000, 1_000)  # the last generation always logs


def test_a_family_s_working_bytes_join_the_chain_s_auto_block_budget(gaussian_config):
    group = sweep.expand(runner.as_config({"chain_block": "auto"}, gaussian_config))[0]
    engine = runner.build_engine(group)
    one_chain = {name: value[0] for name, value in runner.padded_knobs(group.knobs, 1).items()}

    @dataclasses.dataclass(frozen=True)
    class Training(type(engine.model)):
        def working_bytes_per_chain(self, knobs):
            return 1_000_000

    trained = dataclasses.replace(engine, model=Training(**vars(engine.model)))
    assert trained.bytes_per_chain(one_chain) == engine.bytes_per_chain(one_chain) + 1_000_000
    # 8 MiB of CPU block budget at ~1 MB per chain: blocks of 8 chains at most (ceil(8 / 1) = 8 per block here).
    assert devices.resolve_chain_block("auto", 100, 1, trained.bytes_per_chain(one_chain), 8 << 20) == 8


@pytest.mark.parametrize("chains", [1, 2, 3, 10, 101, 1000])
def test_summary_quantiles_have_the_bits_of_nanquantile(chains):
    # Ties (rounded values), a constant column, a column with some NaN and an all-NaN column beside plain ones.
    rng = np.random.default_rng(chains)
    values = rng.standard_normal((chains, 9)).astype(np.float32)
    values[:, 1] = np.round(values[:, 1])
    values[:, 2] = 3.0
    values[0, 3] = np.nan
    values[:, 4] = np.nan
    quantiles = (0.0, 0.1, 0.25, 0.5, 0.9, 1.0)
    expected = np.nanquantile(values, quantiles, axis=0)  # warns on the all-NaN column
    np.testing.assert_array_equal(results.quantiles_over_chains(values, quantiles), expected)
    clean = np.delete(values, [3, 4], axis=1).T.copy()
    clean.sort(axis=1)
    np.testing.assert_array_equal(results.sorted_quantiles(clean, quantiles), np.quantile(clean, quantiles, axis=1))
