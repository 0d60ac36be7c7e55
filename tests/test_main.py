"""The command line: a full small run writes results, plots and report.md; bad input is one line, exit code 2."""

import os
import subprocess
import sys

import numpy as np

from collapse_jax.analysis import results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_main_runs_a_real_fraction_by_regime_sweep_and_writes_plots_and_report(tmp_path):
    workdir = str(tmp_path / "run")
    done = run_cli(
        "-m",
        "experiments.main",
        "--config=experiments/configs/gaussian.py",
        f"--workdir={workdir}",
        "--config.seeds=16",
        "--config.num_generations=20",
        "--config.model.test_size=1000",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "generation 20/20" in done.stderr  # the progress line
    loaded = results.load(workdir)
    assert loaded.metrics["trace_ratio"].shape == (2 * 2 * 16, 21)
    assert not np.isnan(loaded.metrics["trace_ratio"]).any()
    for metric in ("trace_ratio", "w2_sq_to_truth", "nll_real_test", "mean_sq_error", "logdet_ratio"):
        assert os.path.getsize(os.path.join(workdir, "plots", f"{metric}.png")) > 5000
    report = open(os.path.join(workdir, "report.md")).read()
    assert "plots/trace_ratio.png" in report and "regime=accumulate" in report
    os.remove(os.path.join(workdir, "plots", "trace_ratio.png"))
    replot = run_cli("-m", "experiments.plot", f"--workdir={workdir}")
    assert replot.returncode == 0 and os.path.exists(os.path.join(workdir, "plots", "trace_ratio.png"))


def test_unreadable_config_file_is_one_line_and_touches_nothing(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n")
    raising = tmp_path / "raising.py"  # absl's flag parser alone prints an empty "FATAL Flags parsing error:"
    raising.write_text("import ml_collections\ndef get_config():\n    raise TypeError('cannot override name')\n")
    workdir = tmp_path / "run"
    for config in (str(bad), str(raising), str(tmp_path / "missing.py")):
        done = run_cli("-m", "experiments.main", f"--config={config}", f"--workdir={workdir}")
        assert done.returncode == 2
        assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: --config:")
    assert not workdir.exists()


def test_workdir_that_is_a_file_is_refused(tmp_path):
    afile = tmp_path / "results.txt"
    afile.write_text("precious")
    done = run_cli("-m", "experiments.main", "--config=experiments/configs/gaussian.py", f"--workdir={afile}")
    assert done.returncode == 2 and "--workdir" in done.stderr.splitlines()[-1]
    assert afile.read_text() == "precious"


def test_help_needs_no_config_and_says_how_to_list_a_configs_fields():
    for flag in ("--help", "--helpshort"):
        done = run_cli("-m", "experiments.main", flag)
        text = " ".join(done.stdout.split())  # absl wraps the help at 80 columns
        assert "error:" not in done.stderr and "--config: Experiment config file" in text
        assert "List the fields: python -m experiments.settings --model=NAME, or add --dry_run" in text


# Run main as `python -m` does and list, at exit, which of the slow libraries were imported.
IMPORTED_AT_EXIT = """
import atexit, runpy, sys
slow = ("orbax.checkpoint", "flax", "matplotlib")
atexit.register(lambda: print("imported:", [name for name in slow if name in sys.modules], file=sys.stderr))
sys.argv = ["experiments/main.py", *sys.argv[1:]]
runpy.run_module("experiments.main", run_name="__main__")
"""


def test_a_misspelled_field_or_a_bad_value_is_one_line_before_the_slow_imports(tmp_path):
    workdir = tmp_path / "run"
    for override, message in (
        ("--config.regime.real_fractoin=0.1", "config.regime.real_fractoin: unknown field; did you mean "),
        ("--config.regime.real_fraction=abc", "config.regime.real_fraction: 'abc' is not a number; must be "),
    ):
        done = run_cli(
            "-c", IMPORTED_AT_EXIT, "--config=experiments/configs/gaussian.py", f"--workdir={workdir}", override
        )
        error, imported = done.stderr.strip().splitlines()
        assert done.returncode == 2 and error.startswith(f"error: {message}")
        assert imported == "imported: []"  # validated before Orbax, Flax and matplotlib load (about a second saved)
    assert not workdir.exists()
