"""The dry run: every setting with its default and doc, each static group's chains, compiles, memory and disk; nothing
written, exit 0."""

import pathlib
import subprocess
import sys

from collapse_jax.host import plan, runner
from experiments.configs import gaussian

REPO = pathlib.Path(__file__).resolve().parent.parent


def test_settings_lines_give_each_field_its_value_default_and_doc():
    config = runner.as_config({"model.sampling_bias": 0.9}, gaussian.get_config())
    lines = "\n".join(plan.settings_lines(config))
    assert "config.model.sampling_bias = 0.9  (set; default none)" in lines  # a required field: no default
    assert "config.model.l2_log_scale = 0.0  (default)" in lines  # absent from the config: its declared default
    assert "config.regime.real_fraction_schedule = None  (absent: off)" in lines
    assert "L2 penalty (l2 / 2) sum_j (log sigma_j)^2 on the descent" in lines  # the declaration's doc


def test_dry_run_prints_settings_groups_and_memory_writes_nothing_and_exits_0(tmp_path):
    workdir = tmp_path / "run"
    command = [
        sys.executable, "-m", "experiments.main", "--config=experiments/configs/gaussian.py", f"--workdir={workdir}",
        "--dry_run", "--config.seeds=3", "--config.regime.real_fraction=(0.0, 0.5)", "--config.cpu_devices=2",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "config.regime.name = ('replace', 'accumulate')" in out and "config.seeds = 3  (set; default 100)" in out
    # gaussian.py sweeps two regimes: two groups of 2 real fractions x 3 seeds, each compiled once (init and chunk).
    assert "2 static group(s), 12 chains, 4 compiles:" in out
    assert out.count("device memory ~") == 2 and out.count("disk: ") == 2
    # cpu_devices = 2 starts JAX with 2 CPU devices: each group's 6 chains split into a block of 3 on each.
    assert out.count("6 chains (6 padded), 2 block(s) of 3 on 2 device(s)") == 2 and "devices: 2 x cpu" in out
    assert not workdir.exists()
