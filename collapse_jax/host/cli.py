"""Command-line helpers shared by experiments/, launch/ and the kit: the one config loader and quieter Orbax logs.

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
from ml_collections import config_flags
from ml_collections.config_flags import tuple_parser


def _config_argument(argv: list[str]) -> tuple[int, int] | None:
    """Where --config=PATH[:ARG] (or --config PATH[:ARG]) sits in argv: (first index, number of arguments)."""
    for index, argument in enumerate(argv):
        if argument.startswith("--config="):
            return index, 1
        if argument == "--config" and index + 1 < len(argv):
            return index, 2
    return None


def config_file_from_argv(argv: list[str]) -> tuple[str, str | None] | None:
    """(PATH, ARG) of --config=PATH[:ARG] in argv (ARG is handed to get_config), or None when --config is absent."""
    found = _config_argument(argv)
    if found is None:
        return None
    index, count = found
    value = argv[index].split("=", 1)[1] if count == 1 else argv[index + 1]
    path, _, argument = value.partition(":")
    return path, argument or None


def load_config(path: str, argument: str | None = None) -> ml_collections.ConfigDict:
    """Execute the config file and call its get_config() once; a ValueError says in one line why it cannot be used."""
    if not os.path.isfile(path):
        raise ValueError(f"--config: {path} does not exist or is not a file")
    try:
        spec = importlib.util.spec_from_file_location("_collapse_config", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # any failure to import the file is the user's config error, reported in one line
        raise ValueError(f"--config: {path} cannot be loaded: {type(error).__name__}: {error}") from None
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"--config: {path} must define get_config() returning an ml_collections.ConfigDict")
    try:
        config = module.get_config() if argument is None else module.get_config(argument)
    except Exception as error:  # e.g. a type-locked override inside get_config: the flag parser would print nothing
        raise ValueError(f"--config: {path}: get_config() failed: {type(error).__name__}: {error}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"--config: {path}: get_config() must return an ml_collections.ConfigDict, got {config!r}")
    return config


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


def override_problem(config: ml_collections.ConfigDict, argv: list[str]) -> str | None:
    """Why a --config.<field>=<value> override cannot apply (unknown field, unparsable value), in one line, or None."""
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


_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def exit_with_error(message: str) -> None:
    """Bad input: `error: <message>` as one line on stderr, exit code 2 (no traceback)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def validate_or_exit(config: ml_collections.ConfigDict) -> None:
    """Check every field against its declaration (types, ranges, the report block) and exit 2 with one line if one
    fails. It imports JAX (the curation table and the families declare fields) but not Orbax, Flax or matplotlib, so a
    bad value is reported in about a second, before a run's slow imports."""
    from collapse_jax.host import sweep

    try:
        sweep.validate(config)
    except ValueError as error:
        exit_with_error(str(error))


def define_config_flag(argv: list[str], help_string: str) -> list[str]:
    """Load --config's file once and define the `config` flag holding it; returns argv without --config=PATH.

    absl then applies the --config.<field>=<value> overrides to that one ConfigDict (ml_collections' own override
    parsing), so get_config() runs once per process. An unusable file or override exits 2 with one line.
    """
    found = config_file_from_argv(argv)
    if found is None and any(argument in _HELP_FLAGS for argument in argv):
        # --help needs no config: absl lists the flags, and the `config` flag's help says how to list its fields.
        flags.DEFINE_string("config", None, help_string, module_name=sys.argv[0])  # listed by --helpshort too
        return argv
    try:
        if found is None:
            raise ValueError("--config: missing (pass --config=experiments/configs/<name>.py)")
        config = load_config(*found)
        problem = override_problem(config, argv)
        if problem:
            raise ValueError(problem)
    except ValueError as error:
        exit_with_error(str(error))
    index, count = _config_argument(argv)
    rest = argv[:index] + argv[index + count :]
    config_flags.DEFINE_config_dict("config", config, help_string, sys_argv=rest)
    return rest


class _DropOrbaxInfo(python_logging.Filter):
    """Orbax logs several INFO lines per save; keep its warnings, drop its chatter from the progress log."""

    def filter(self, record: python_logging.LogRecord) -> bool:
        noisy = "/orbax/" in record.pathname or "xla_bridge" in record.pathname
        return record.levelno >= python_logging.WARNING or not noisy


def quiet_library_logs() -> None:
    """Install the Orbax/XLA INFO filter on absl's handler."""
    logging.get_absl_handler().addFilter(_DropOrbaxInfo())
