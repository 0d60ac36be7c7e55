"""The suite's XLA compile setting: LLVM at optimization level 0 unless COLLAPSE_JAX_TEST_XLA=production.

The suite is compile-bound (a tiny LM's engine spends ~85% of its first run in XLA compilation), and XLA:CPU's
backend optimization level 0 cuts a test's CPU time by ~40% (BUILD_NOTES.md, "Test-suite time at XLA -O0").
Every bit comparison in the suite is between two computations made under the same setting, except where a test
reads bits that production settings wrote (tests/fixtures): those run their subprocesses with `production_env()`.
"""

import os

FAST_FLAG = "--xla_backend_optimization_level=0"
VARIABLE = "COLLAPSE_JAX_TEST_XLA"


def apply() -> None:
    """Add FAST_FLAG to XLA_FLAGS (before jax starts its backend) unless the production setting is asked for."""
    setting = os.environ.get(VARIABLE, "fast")
    if setting not in ("fast", "production"):
        raise ValueError(f"{VARIABLE}={setting!r}: allowed are 'fast' (default) and 'production'")
    flags = os.environ.get("XLA_FLAGS", "")
    if setting == "fast" and FAST_FLAG not in flags.split():
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_FLAG}".strip()


def production_env() -> dict[str, str]:
    """os.environ with the production compile setting, for subprocesses that must reproduce stored bits."""
    flags = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag != FAST_FLAG)
    return {**os.environ, "XLA_FLAGS": flags, VARIABLE: "production"}
