"""The example family outside the package: it runs end to end by module path, and the README walkthrough works."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np

from collapse_jax.analysis import results
from collapse_jax.models import base

REPO = pathlib.Path(__file__).resolve().parents[1]
README_WORKDIR = "/tmp/laplace"  # the walkthrough's workdir, moved under the test's tmp_path


def run(command: list[str] | str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, **kwargs)


def test_example_family_runs_end_to_end_through_experiments_main(tmp_path):
    workdir = str(tmp_path / "laplace")
    done = run([
        sys.executable, "-m", "experiments.main", "--config=examples/custom_family/laplace_config.py",
        f"--workdir={workdir}", "--config.seeds=4", "--config.chain_block=4", "--config.num_generations=20",
        "--config.make_plots=False",
    ])  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = results.load(workdir)
    scale = loaded.metrics["scale_ratio"]
    assert scale.shape == (2 * 2 * 4, 21) and not loaded.failed.any() and np.isfinite(scale).all()
    # The family is found by its module path alone: no module under collapse_jax/ imports or registers it.
    assert not any("examples.custom_family" in path.read_text() for path in (REPO / "collapse_jax").rglob("*.py"))
    assert "laplace" not in base.available_models()


def walkthrough_commands() -> list[str]:
    """The fenced bash commands of README's "Write your own family" section, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Write your own family", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_walkthrough_commands_run_verbatim(tmp_path):
    commands = walkthrough_commands()
    assert [command.split()[:3] for command in commands] == [
        ["python", "-m", "collapse_jax.testing"],
        ["python", "-m", "experiments.main"],
    ]
    # `python` is this interpreter; only the walkthrough's workdir moves into tmp_path.
    environment = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    workdir = str(tmp_path / "laplace")
    outputs = []
    for command in commands:
        done = run(command.replace(README_WORKDIR, workdir), shell=True, env=environment, executable="/bin/bash")
        assert done.returncode == 0, (command, done.stderr[-2000:])
        outputs.append(done.stdout)
    assert "PASS deterministic" in outputs[0] and "FAIL" not in outputs[0]
    assert os.path.exists(os.path.join(workdir, "report.md"))
    assert results.load(workdir).metrics["kl_to_truth"].shape[1] == 11
