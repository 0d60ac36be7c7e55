"""A sweep split into N shard runs: per-shard wrapper configs, the ROOT/sweep.json manifest, and each shard's command.

Shard i is an ordinary `experiments.main` run in ROOT/shard_<i> over the contiguous global chain-id range i of N.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import sys
from typing import Any

import ml_collections

from collapse_jax.analysis.aggregate import MANIFEST, load_manifest
from collapse_jax.host import sweep
from collapse_jax.store import workdir_io

SHARD_CONFIG = "config.py"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WRAPPER = '''"""Shard {index} of {num_shards} of the sweep in {root} (written by launch.sweep; do not edit).

Loads {config_file}, applies the launch's command-line overrides, and keeps chains {low}..{high_minus_one}.
"""

from collapse_jax.host import cli, sweep

CONFIG_FILE = {config_file!r}
CONFIG_ARGUMENT = {config_argument!r}
OVERRIDES = {overrides}


def get_config():
    config = cli.load_config(CONFIG_FILE, CONFIG_ARGUMENT)
    for path, value in OVERRIDES.items():
        sweep.set_field(config, path, value)
    with config.unlocked():
        config.num_shards = {num_shards}
        config.shard_index = {index}
    return config
'''


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shard:
    """One job of the sweep: its workdir, wrapper config and global chain-id range [chain_low, chain_high)."""

    index: int
    workdir: str
    config_path: str
    chain_low: int
    chain_high: int


def shard_name(index: int) -> str:
    return f"shard_{index:03d}"


def total_chains(config: ml_collections.ConfigDict) -> int:
    """Chains of the whole sweep (`plan` refuses a config that shards itself); validates the config first."""
    return sum(len(group.chain_ids) for group in sweep.expand(config))


def _literal(path: str, value: Any) -> Any:
    """The override as a Python literal the wrapper can hold (tuples, numbers, strings, booleans, None)."""
    if (
        not isinstance(value, (bool, int, float, str, tuple, list, type(None)))
        or ast.literal_eval(repr(value)) != value
    ):
        raise ValueError(f"--config.{path}: override {value!r} is not a plain literal the shard configs can repeat")
    return value


def plan(
    config: ml_collections.ConfigDict,
    config_file: str,
    config_argument: str | None,
    overrides: dict[str, Any],
    num_jobs: int,
    root: str,
) -> tuple[dict, list[Shard]]:
    """The manifest and shards of a sweep split into `num_jobs` jobs under `root` (nothing is written)."""
    for field in ("num_shards", "shard_index"):
        if field in config:
            raise ValueError(f"config.{field}: set by launch.sweep; remove it from the config or its overrides")
    if not isinstance(num_jobs, int) or num_jobs < 1:
        raise ValueError(f"--num_jobs: must be an integer >= 1, got {num_jobs!r}")
    chains = total_chains(config)
    if num_jobs > chains:
        raise ValueError(f"--num_jobs: {num_jobs} exceeds the sweep's {chains} chains; use at most {chains}")
    root = os.path.abspath(root)
    shards = []
    for index in range(num_jobs):
        # The same contiguous ranges sweep.expand keeps for (num_shards, shard_index).
        low, high = chains * index // num_jobs, chains * (index + 1) // num_jobs
        workdir = os.path.join(root, shard_name(index))
        shards.append(
            Shard(
                index=index,
                workdir=workdir,
                config_path=os.path.join(workdir, SHARD_CONFIG),
                chain_low=low,
                chain_high=high,
            )
        )
    manifest = {
        "config_file": os.path.abspath(config_file),
        "config_argument": config_argument,
        "overrides": {path: _literal(path, value) for path, value in sorted(overrides.items())},
        "num_jobs": num_jobs,
        "total_chains": chains,
        "num_generations": config.num_generations,
        "shards": [dataclasses.asdict(shard) for shard in shards],
    }
    return manifest, shards


def write(manifest: dict, shards: list[Shard], root: str) -> None:
    """Create ROOT, refuse a ROOT holding a different sweep, write sweep.json and every shard's wrapper config."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValueError(f"--workdir: {root} is a file, not a directory")
    saved = load_manifest(root)
    # JSON round trip so tuples compare equal to the lists read back from sweep.json.
    if saved is not None and saved != json.loads(json.dumps(manifest)):
        inputs = ("config_file", "config_argument", "overrides", "num_jobs")
        changed = [k for k in inputs if saved.get(k) != json.loads(json.dumps(manifest[k]))] or ["config contents"]
        raise ValueError(
            f"--workdir: {root} holds a sweep launched with different {', '.join(changed)}; relaunch it with the same "
            "flags to resume, or use a new --workdir"
        )
    os.makedirs(root, exist_ok=True)
    for shard in shards:
        os.makedirs(shard.workdir, exist_ok=True)
        text = _WRAPPER.format(
            index=shard.index,
            num_shards=manifest["num_jobs"],
            root=root,
            config_file=manifest["config_file"],
            config_argument=manifest["config_argument"],
            overrides=repr(manifest["overrides"]),
            low=shard.chain_low,
            high_minus_one=shard.chain_high - 1,
        )
        workdir_io.atomic_write(shard.config_path, lambda handle, text=text: handle.write(text.encode()))
    workdir_io.write_json(os.path.join(root, MANIFEST), manifest)


def command(shard: Shard, python: str = sys.executable) -> list[str]:
    """The shard's run (and, rerun unchanged, its resume)."""
    return [python, "-m", "experiments.main", f"--config={shard.config_path}", f"--workdir={shard.workdir}"]
