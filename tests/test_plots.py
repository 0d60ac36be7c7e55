"""The run's report: matplotlib is imported only when a figure is drawn, and each metric is summarised once."""

import os
import subprocess
import sys

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
