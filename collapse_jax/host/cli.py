"""Command-line helpers shared by experiments/ and launch/: config-file checks and quieter Orbax logs.

A bad --config gets one line naming the file and the problem, instead of a traceback from the flag parser.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging as python_logging
import os
import sys

import ml_collections
from absl import flags, logging
from ml_collections.config_flags import tuple_parser


def config_path_from_argv(argv: list[str]) -> str | None:
    """The value of --config=PATH (or --config PATH) in argv, without any ':override' suffix."""
    for index, argument in enumerate(argv):
        if argument.startswith("--config="):
            return argument.split("=", 1)[1].split(":", 1)[0]
        if argument == "--config" and index + 1 < len(argv):
            return argv[index + 1].split(":", 1)[0]
    return None


def config_file_problem(path: str) -> str | None:
    """Why the config file cannot be used (one line), or None when it loads and defines get_config()."""
    if not os.path.isfile(path):
        return f"--config: {path} does not exist or is not a file"
    try:
        spec = importlib.util.spec_from_file_location("_collapse_config_check", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # any failure to import the file is the user's config error, reported in one line
        return f"--config: {path} cannot be loaded: {type(error).__name__}: {error}"
    if not callable(getattr(module, "get_config", None)):
        return f"--config: {path} must define get_config() returning an ml_collections.ConfigDict"
    try:
        module.get_config()
    except Exception as error:  # e.g. a type-locked override inside get_config: the flag parser would print nothing
        return f"--config: {path}: get_config() failed: {type(error).__name__}: {error}"
    return None


# The parsers config_flags uses for an override of a field of this type (ml_collections 1.1).
_PARSERS = {
    int: flags.IntegerParser(),
    float: flags.FloatParser(),
    bool: flags.BooleanParser(),
    tuple: tuple_parser.TupleParser(),
}


def _override_paths(argv: list[str]) -> list[tuple[str, str]]:
    """(field path, raw value) of every --config.<path>=<value> argument."""
    pairs = []
    for argument in argv:
        if argument.startswith("--config.") and "=" in argument:
            path, value = argument[len("--config.") :].split("=", 1)
            pairs.append((path, value))
    return pairs


def _fields(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every field path of a config, blocks included (an override may replace a whole block)."""
    paths = []
    for key in config.keys():
        paths.append(f"{prefix}{key}")
        if isinstance(config[key], ml_collections.ConfigDict):
            paths.extend(_fields(config[key], f"{prefix}{key}."))
    return paths


def override_problem(argv: list[str]) -> str | None:
    """Why a --config.<field>=<value> override cannot apply (unknown field, unparsable value), in one line, or None."""
    spec = importlib.util.spec_from_file_location("_collapse_config_check", config_path_from_argv(argv))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    known = _fields(config)
    for path, _ in _override_paths(argv):
        if path not in known:
            close = difflib.get_close_matches(path, known, n=1, cutoff=0.6)
            return f"config.{path}: unknown field" + (f"; did you mean config.{close[0]}?" if close else "")
    for path, value in _override_paths(argv):
        *parents, leaf = path.split(".")
        node = config
        for part in parents:
            node = node[part]
        parser = _PARSERS.get(node.get_type(leaf)) if isinstance(node, ml_collections.ConfigDict) else None
        if parser is None:
            continue  # config_flags reports types it cannot override itself
        try:
            parser.parse(value)  # what config_flags does with the override, before absl would print a usage error
        except (ValueError, TypeError, flags.Error) as error:
            return f"config.{path}: cannot read {value!r} as {node.get_type(leaf).__name__}: {error}"
    return None


def exit_on_bad_config(argv: list[str]) -> None:
    """Exit with status 2 and a one-line message when --config names an unusable file or an override cannot apply."""
    path = config_path_from_argv(argv)
    problem = "--config: missing (pass --config=experiments/configs/<name>.py)" if path is None else None
    problem = problem or config_file_problem(path) or override_problem(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


class _DropOrbaxInfo(python_logging.Filter):
    """Orbax logs several INFO lines per save; keep its warnings, drop its chatter from the progress log."""

    def filter(self, record: python_logging.LogRecord) -> bool:
        noisy = "/orbax/" in record.pathname or "xla_bridge" in record.pathname
        return record.levelno >= python_logging.WARNING or not noisy


def quiet_library_logs() -> None:
    """Install the Orbax/XLA INFO filter on absl's handler."""
    logging.get_absl_handler().addFilter(_DropOrbaxInfo())
