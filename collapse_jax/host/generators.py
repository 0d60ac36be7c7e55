"""`generator = "auto"`: the faster of the two bit-identical random-number generators for a static group, measured on
this machine in the run's own chunks and cached.

Families draw their normals and uniforms through models/_threefry.py, which traces either the unrolled Threefry or
jax.random itself; both give the same bits (tests/test_threefry.py, and a whole run in tests/test_generators.py), so
a run may switch between them from one chunk to the next. Which is faster depends on the backend and on the program
around the draws (BUILD_NOTES, "Generators"), so no rule fixed in advance picks it. A long run on a machine without a
cached answer runs chunks 1 and 3 with one generator and 2 and 4 with the other, times chunks 3 and 4 (the interval
between their metrics reaching the host: the device runs the chunks back to back), keeps the faster for the rest of
the run and caches it under the group's signature. Short runs, and runs of several processes (their compiled programs
must be the same), use the cached answer or DEFAULT.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax

from collapse_jax.host import devices
from collapse_jax.models import _threefry

AUTO = "auto"
SETTINGS = (AUTO, *_threefry.GENERATORS)
DEFAULT = "unrolled"  # the faster on the 2-core CPU measured (BUILD_NOTES, "Generators")
# A run measures only when it has at least this many chunks left and this much work: the measurement costs one more
# compile (~1 s on the CPU) and the pipelining of two chunks, a few percent of such a run, paid once per machine.
MEASURE_MIN_CHUNKS = 6
MEASURE_MIN_CHAIN_GENERATIONS = 8 * devices.CHUNK_CHAIN_GENERATIONS
CACHE_FILE = "generators.json"


def cache_path() -> str:
    """$COLLAPSE_JAX_CACHE, else $XDG_CACHE_HOME/collapse_jax, else ~/.cache/collapse_jax; the file in it."""
    folder = os.environ.get("COLLAPSE_JAX_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "collapse_jax"
    )
    return os.path.join(folder, CACHE_FILE)


def signature(engine: Any, padded_chains: int) -> str:
    """What the measured speeds depend on: jax, the backend and its devices, the family, the regime and the shapes."""
    device = jax.devices()[0]
    model = type(engine.model)
    return " | ".join(
        [
            f"jax {jax.__version__}",
            f"{device.platform} {device.device_kind} x{jax.local_device_count()}",
            f"{model.__module__}.{model.__qualname__}",
            f"regime {engine.regime.name} M {engine.regime.samples_per_generation}",
            f"block {engine.chain_block} chunk {engine.chunk_generations} chains {padded_chains}",
        ]
    )


def _read(path: str) -> dict:
    try:
        with open(path) as handle:
            cache = json.load(handle)
    except (OSError, ValueError):  # absent, unreadable or torn: measure again
        return {}
    return cache if isinstance(cache, dict) else {}


def cached(key: str) -> str | None:
    entry = _read(cache_path()).get(key)
    name = entry.get("generator") if isinstance(entry, dict) else None
    return name if name in _threefry.GENERATORS else None


def remember(key: str, name: str, seconds: dict[str, float]) -> None:
    """Add the measured choice to the cache (written whole to a temporary file, then renamed); a cache that cannot
    be written is skipped: the next run measures again."""
    path = cache_path()
    cache = _read(path)
    cache[key] = {"generator": name, "seconds_per_chunk": seconds}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            json.dump(cache, handle, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except OSError:
        pass


class Plan:
    """Which generator each chunk of one group's run uses, from the setting, the cache and (for "auto") the run's own
    measurement. `name(index)` for the index-th chunk this process dispatches; `finished(index, seconds)` with each
    chunk's completion interval."""

    def __init__(self, setting: str, key: str, chunks_left: int, chain_generations_left: int, processes: int = 1):
        if setting not in SETTINGS:
            raise ValueError(f"config.generator: must be one of {', '.join(SETTINGS)}, got {setting!r}")
        self.key, self.seconds, self.measuring = key, {}, False
        if setting != AUTO:
            self.chosen = setting
            return
        self.chosen = cached(key) if processes == 1 else None
        if self.chosen is None:
            self.chosen = DEFAULT
            self.measuring = (
                processes == 1
                and chunks_left >= MEASURE_MIN_CHUNKS
                and chain_generations_left >= MEASURE_MIN_CHAIN_GENERATIONS
            )
        # Chunks 0-3 while measuring: A B A B (chunks 0 and 1 carry the compiles; 2 and 3 are timed).
        self.order = (DEFAULT, *(g for g in _threefry.GENERATORS if g != DEFAULT))

    def name(self, index: int) -> str:
        if self.measuring and index < 4:
            return self.order[index % 2]
        return self.chosen

    def finished(self, index: int, seconds: float) -> None:
        if not self.measuring or index not in (2, 3):
            return
        self.seconds[self.order[index % 2]] = seconds
        if index == 3:
            self.chosen = min(self.seconds, key=self.seconds.get)
            self.measuring = False
            remember(self.key, self.chosen, self.seconds)
