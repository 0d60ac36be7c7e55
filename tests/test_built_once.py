"""One run of experiments.main executes get_config() once and builds each static group's family once.

Counted with a config file and an outside family (the Gaussian under another module name) that append a line per call.
"""

import os
import subprocess
import sys

from conftest import resumes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COUNTING_CONFIG = """
from experiments.configs import gaussian


def get_config():
    with open({log!r}, "a") as log:
        log.write("get_config\\n")
    config = gaussian.get_config()  # two static groups: regime.name = ("replace", "accumulate")
    config.model.name = "counting_family"
    return config
"""

# The Gaussian family as an outside module: every declaration of collapse_jax.models.gaussian, and a make_model that
# counts its calls (functools.wraps keeps the return annotation the sweep reads the family's class from).
COUNTING_FAMILY = """
import functools

from collapse_jax.models import gaussian

globals().update({{name: value for name, value in vars(gaussian).items() if not name.startswith("__")}})


@functools.wraps(gaussian.make_model)
def make_model(*args, **kwargs):
    with open({log!r}, "a") as log:
        log.write("make_model\\n")
    return gaussian.make_model(*args, **kwargs)
"""

SMALL = [
    "--config.seeds=2",
    "--config.chain_block=2",
    "--config.regime.real_fraction=0.0",
    "--config.samples_per_generation=16",
    "--config.model.test_size=100",
    "--config.chunk_generations=2",
    "--config.make_plots=False",
]


def _run_counting(tmp_path, workdir: str, num_generations: int) -> dict[str, int]:
    """Calls of get_config and make_model during one `python -m experiments.main` run."""
    log = tmp_path / "calls.txt"
    log.write_text("")
    (tmp_path / "counting_config.py").write_text(COUNTING_CONFIG.format(log=str(log)))
    (tmp_path / "counting_family.py").write_text(COUNTING_FAMILY.format(log=str(log)))
    command = [
        sys.executable,
        "-m",
        "experiments.main",
        f"--config={tmp_path / 'counting_config.py'}",
        f"--workdir={workdir}",
        *SMALL,
        f"--config.num_generations={num_generations}",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"generation {num_generations}/{num_generations}" in done.stderr or "resumed" in done.stderr
    lines = log.read_text().splitlines()
    return {name: lines.count(name) for name in ("get_config", "make_model")}


def test_a_run_loads_the_config_once_and_builds_each_static_group_once_also_when_it_resumes(tmp_path):
    workdir = str(tmp_path / "run")
    # Fresh run: sweep.expand builds each of the 2 groups' family while validating; the runner reuses it.
    assert _run_counting(tmp_path, workdir, 2) == {"get_config": 1, "make_model": 2}
    # Resume extending the horizon 2 -> 3: the 2 groups at the new horizon, plus one build per group at the saved
    # horizon to read its checkpoint (a family may size state buffers by num_generations, as the KDE does).
    assert _run_counting(tmp_path, workdir, 3) == {"get_config": 1, "make_model": 4}
    assert resumes(workdir) == [{"group": g, "from_generation": 2, "to_generation": 3} for g in (0, 1)]
    # Resume with the same settings (nothing left to run): the checkpoint's horizon is the run's, nothing is rebuilt.
    assert _run_counting(tmp_path, workdir, 3) == {"get_config": 1, "make_model": 2}
