"""The run's report: matplotlib is imported only when a figure is drawn, and each metric is summarised once."""

import os
import subprocess
import sys

import numpy as np

from collapse_jax.analysis import panels, plots, results
from collapse_jax.host import runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_run_path_imports_no_matplotlib_until_a_figure_is_drawn():
    check = (
        "import sys\n"
        "import experiments.main, collapse_jax.host.runner, collapse_jax.analysis.plots\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_regenerating_a_report_imports_neither_jax_nor_scipy_when_run_json_records_the_switches(tmp_path):
    # The report path (experiments.plot / experiments.report and the analysis they call) reads stored results only:
    # importing it, and writing a whole report with its figures, must not pay jax's 1.5 s import (nor scipy's).
    check = (
        "import sys\n"
        "import numpy as np\n"
        "import experiments.plot  # experiments.report imports sweep_report only (both define --workdir)\n"
        "from collapse_jax.analysis import aggregate, error_sources, frames, plots, results, sweep_report\n"
        "loaded = sorted(m for m in ('jax', 'jaxlib', 'scipy', 'ml_dtypes') if m in sys.modules)\n"
        "knobs = {'seed': np.tile(np.arange(4), 2), 'real_fraction': np.repeat([0.0, 0.5], 4)}\n"
        "values = np.random.default_rng(0).uniform(0.5, 1.5, (8, 6)).astype(np.float32)\n"
        "config = {'model': {'name': 'gaussian'}, 'num_generations': 5, 'regime': {'real_fraction': [0.0, 0.5]}}\n"
        "run = results.Results({'trace_ratio': values, 'failed': np.zeros_like(values)}, knobs, config,\n"
        "                      np.arange(8), error_source_switches={})\n"
        f"plots.write_report({str(tmp_path)!r}, run)\n"
        "print(loaded, sorted(m for m in ('jax', 'jaxlib', 'scipy', 'ml_dtypes') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[] []"
    assert (tmp_path / "plots" / "trace_ratio_final_vs_real_fraction.png").exists()  # the whole report was drawn


def test_the_report_summarises_each_metric_once_and_draws_every_figure(gaussian_config, tmp_path, monkeypatch):
    run = runner.simulate(gaussian_config)
    calls = []
    quantiles = results.quantiles_over_chains

    def counted(values, levels):
        calls.append(values.shape)
        return quantiles(values, levels)

    monkeypatch.setattr(results, "quantiles_over_chains", counted)
    path = plots.write_report(str(tmp_path), run)
    metrics = [m for m in run.metrics if m != "failed"]
    assert len(run.knob_groups()) == 1
    assert len(calls) == len(metrics)  # once per metric, shared by the profile, the final table and the figures
    assert sorted(os.listdir(tmp_path / "plots")) == sorted(f"{m}.png" for m in metrics)
    with open(path) as handle:
        text = handle.read()
    assert "## Collapse profile" in text and "## Final generation" in text


def test_log_axes_label_powers_of_ten_in_plain_text():
    assert [panels.power_of_ten(v) for v in (0.01, 1.0, 1000.0, 2.0, 0.5)] == ["10⁻²", "10⁰", "10³", "2", "0.5"]


def test_each_group_gets_its_own_panel_and_band_and_the_title_names_the_shared_settings(monkeypatch, tmp_path):
    """Four overlapping 10-90% bands blend into one colour: each group keeps its band in its own panel, the titles name
    the settings every line shares (curation included when it is none), and the legend lists only what is drawn."""
    drawn = {}
    monkeypatch.setattr(panels, "finish", lambda figure, axes, handles, path, title, *rest: drawn.update(locals()))
    chains, columns = 8, 5
    labels = [(rho, regime) for regime in ("replace", "accumulate") for rho in (0.0, 0.1)]
    knobs = {
        "seed": np.tile(np.arange(chains), 4),
        "real_fraction": np.repeat([rho for rho, _ in labels], chains),
        "regime": np.repeat([regime for _, regime in labels], chains),
    }
    config = {"model": {"name": "gaussian"}, "samples_per_generation": 100, "num_generations": columns - 1}
    config["regime"] = {"name": ["replace", "accumulate"], "real_fraction": [0.0, 0.1]}
    values = np.random.default_rng(0).uniform(0.5, 1.5, (4 * chains, columns)).astype(np.float32)
    metrics = {"trace_ratio": values, "failed": np.zeros_like(values)}
    run = results.Results(metrics, knobs, config, np.arange(4 * chains), np.arange(columns))
    plots.plot_metric(run, "trace_ratio", str(tmp_path / "trace_ratio.png"))
    assert len(drawn["axes"]) == 4
    assert [axis.get_title() for axis in drawn["axes"]][:2] == ["real_fraction=0, regime=replace"] + [
        "real_fraction=0.1, regime=replace"
    ]
    assert all(len(axis.collections) == 1 for axis in drawn["axes"])  # one band per panel
    assert "gaussian, M=100, regime=swept, real_fraction=swept, curation=none" in drawn["title"]
    assert list(drawn["handles"]) == ["median over seeds", "10-90% band over seeds", "the other lines' medians"]
    lines = [
        {
            "labels": {"regime": regime},
            "points": [(0.0, 1.0, 0.9, 1.1, 8), (0.1, 1.0, 0.9, 1.1, 8)],
            "baselines": [1, 1],
        }
        for regime in ("replace", "accumulate")
    ]
    within = {"boundary": None, "status": "always_within", "crossings": [], "within": [True, True]}
    plots.plot_final_vs_knob(lines, [within] * 2, "trace_ratio", "real_fraction", 4, str(tmp_path / "f.png"), 0.5)
    assert not any("breakdown" in name for name in drawn["handles"]) and drawn["rest"][0] == "real_fraction"


def test_figures_drawn_in_the_fork_land_and_a_failure_there_is_redrawn_here_with_its_own_error(tmp_path):
    # panels.draw_all hands every second figure to a forked copy (without jax, with two cores): its files must land,
    # a job that fails only in the fork is redrawn by the parent, and one that always fails raises its own error.
    check = (
        "import os, sys\n"
        "from collapse_jax.analysis import panels\n"
        "parent = os.getpid()\n"
        "def write(path, fail_in_fork=False):\n"
        "    if fail_in_fork and os.getpid() != parent:\n"
        "        raise RuntimeError('only in the fork')\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "def broken(path):\n"
        "    raise ValueError('figure ' + path)\n"
        f"root = {str(tmp_path)!r}\n"
        "panels.draw_all([(write, (root + '/a',)), (write, (root + '/b',)), (write, (root + '/c',))])\n"
        "print(len({open(root + '/' + n).read() for n in 'abc'}))\n"
        "panels.draw_all([(write, (root + '/d',)), (write, (root + '/e', True))])\n"
        "print(open(root + '/e').read() == str(parent))\n"
        "try:\n"
        "    panels.draw_all([(write, (root + '/f',)), (broken, ('g',))])\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    cores = len(os.sched_getaffinity(0))
    assert done.stdout.split("\n")[:3] == [str(min(cores, 2)), "True", "figure g"]
