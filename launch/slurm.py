"""SLURM backend: one sbatch array script (one array task per shard) that requeues a preempted shard.

The batch shell gets --signal=B:USR1@seconds before the time limit, forwards it to the run (which checkpoints and exits
75 = runner.PREEMPTED_EXIT_CODE), and then `scontrol requeue`s its own array task; the requeued task resumes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys

from collapse_jax.analysis import aggregate
from collapse_jax.host.runner import PREEMPTED_EXIT_CODE
from launch import shards

SCRIPT = "sweep.sbatch"
LOG_DIR = "slurm_logs"
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")  # sbatch --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_MEMORY = re.compile(r"^\d+[KMGT]?$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resources:
    """Per-array-task resources and scheduling options (flags, or config.slurm.<field>)."""

    partition: str | None = None
    time: str = "04:00:00"
    gpus: int = 0
    cpus: int = 4
    mem: str | None = None  # e.g. 32G; None: the partition's default
    requeue: bool = True
    signal_seconds: int = 300  # USR1 this long before the time limit: time to finish a chunk and checkpoint
    max_concurrent: int | None = None  # array throttle (%N)
    account: str | None = None
    job_name: str = "collapse"

    def validate(self) -> None:
        """One-line ValueError naming the flag for any value sbatch would reject."""
        if not _TIME.match(self.time):
            raise ValueError(f"--time: {self.time!r} is not an sbatch time (e.g. 04:00:00, 90, 1-12:00:00)")
        for flag, value, minimum in (
            ("gpus", self.gpus, 0),
            ("cpus", self.cpus, 1),
            ("signal_seconds", self.signal_seconds, 1),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"--{flag}: must be an integer >= {minimum}, got {value!r}")
        if self.mem is not None and not _MEMORY.match(self.mem):
            raise ValueError(f"--mem: {self.mem!r} is not an sbatch memory size (e.g. 32G, 4000M)")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(f"--max_concurrent: must be >= 1, got {self.max_concurrent}")
        for flag, value in (("partition", self.partition), ("account", self.account), ("job_name", self.job_name)):
            if value is not None and not re.match(r"^[\w.,-]+$", value):
                raise ValueError(f"--{flag}: {value!r} may hold only letters, digits and . , _ -")


def script(manifest: dict, root: str, resources: Resources, python: str = sys.executable) -> str:
    """The sbatch array script for a planned sweep (see shards.plan)."""
    resources.validate()
    root = os.path.abspath(root)
    last = manifest["num_jobs"] - 1
    throttle = f"%{resources.max_concurrent}" if resources.max_concurrent else ""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={resources.job_name}",
        f"#SBATCH --array=0-{last}{throttle}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={resources.cpus}",
        f"#SBATCH --time={resources.time}",
        # %A = array job id, %a = task id; append so a requeued task keeps its earlier log.
        f"#SBATCH --output={root}/{LOG_DIR}/%A_%a.out",
        "#SBATCH --open-mode=append",
        # B: the signal goes to this batch shell only, which forwards it to the run (see the trap below).
        f"#SBATCH --signal=B:USR1@{resources.signal_seconds}",
    ]
    if resources.partition:
        lines.append(f"#SBATCH --partition={resources.partition}")
    if resources.account:
        lines.append(f"#SBATCH --account={resources.account}")
    if resources.gpus:
        lines.append(f"#SBATCH --gres=gpu:{resources.gpus}")
    if resources.mem:
        lines.append(f"#SBATCH --mem={resources.mem}")
    lines.append("#SBATCH --requeue" if resources.requeue else "#SBATCH --no-requeue")
    requeue = (
        '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"'
        if resources.requeue
        else '  echo "preempted; --no-requeue: rerun this array task to resume" >&2'
    )
    body = f"""
# {manifest["num_jobs"]} shards of {manifest["total_chains"]} chains from {manifest["config_file"]} (launch.sweep).
set -u
SHARD_DIR={shlex.quote(root)}/shard_$(printf '%03d' "$SLURM_ARRAY_TASK_ID")
cd {shlex.quote(shards.REPO_ROOT)}
{shlex.quote(python)} -m experiments.main --config="$SHARD_DIR/{shards.SHARD_CONFIG}" --workdir="$SHARD_DIR" &
RUN_PID=$!
# Forward preemption warnings to the run: it finishes the chunk in flight, checkpoints, exits {PREEMPTED_EXIT_CODE}.
trap 'kill -USR1 "$RUN_PID" 2>/dev/null' USR1
trap 'kill -TERM "$RUN_PID" 2>/dev/null' TERM
# A trapped signal interrupts `wait` with a status > 128; wait again until the run's own status arrives (127: the
# status was already collected, so the last one stands).
wait "$RUN_PID"
STATUS=$?
while [ "$STATUS" -gt 128 ]; do
  wait "$RUN_PID"
  NEXT=$?
  [ "$NEXT" -eq 127 ] && break
  STATUS=$NEXT
done
echo "$STATUS" > "$SHARD_DIR/{aggregate.EXIT_STATUS_FILE}"
if [ "$STATUS" -eq {PREEMPTED_EXIT_CODE} ]; then
{requeue}
fi
exit "$STATUS"
"""
    return "\n".join(lines) + "\n" + body


def write_script(manifest: dict, root: str, resources: Resources, python: str = sys.executable) -> str:
    """Write ROOT/sweep.sbatch (and the log folder); returns its path."""
    text = script(manifest, root, resources, python)
    os.makedirs(os.path.join(root, LOG_DIR), exist_ok=True)
    path = os.path.join(root, SCRIPT)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o755)
    return path


def submit(path: str) -> str:
    """`sbatch PATH`; returns sbatch's reply (the job id line)."""
    if shutil.which("sbatch") is None:
        raise ValueError("--backend=slurm: sbatch is not on PATH; use --dry_run to write the script only")
    reply = subprocess.run(["sbatch", path], capture_output=True, text=True)
    if reply.returncode != 0:
        raise ValueError(f"--backend=slurm: sbatch failed: {reply.stderr.strip()}")
    return reply.stdout.strip()
