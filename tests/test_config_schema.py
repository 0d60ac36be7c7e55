"""Every config field is declared once and checked by one validator; configs share common.py's fields."""

import ast
import importlib
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from collapse_jax.host import config_schema, runner, sweep
from collapse_jax.models import base
from experiments.configs import common, gaussian

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "configs"
CONFIGS = sorted(path.stem for path in CONFIG_DIR.glob("*.py") if path.stem not in ("__init__", "common"))
# One shipped config per family, for checks that validate only (no model is built, so the LM and VAE are cheap too).
FAMILY_CONFIGS = {
    "gaussian": "gaussian",
    "discrete": "discrete",
    "gmm": "gmm",
    "kde": "kde",
    "linear_regression": "linear_regression",
    "gaussian_classifier": "mitigation_verifier",
    "poisson": "poisson",
    "bernoulli": "bernoulli",
    "lm": "lm_tiny",
    "vae": "vae_digits",
    "diffusion": "diffusion_oracle",
}
# A value of the wrong kind for each declared kind (kind "any" fields have their own checks, tested below).
WRONG_KIND = {"int": "abc", "number": float("nan"), "str": 12345, "bool": "yes", "ints": ("a",), "strs": 5}


def load(name: str):
    return importlib.import_module(f"experiments.configs.{name}").get_config()


def one_line_error(config, path: str) -> str:
    with pytest.raises(ValueError) as error:
        sweep.validate(config)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"config.{path}:"), message
    return message


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_validates_has_the_shared_fields_and_accepts_a_curation_override(name):
    config = load(name)
    sweep.validate(config)
    fields = config_schema.leaves(config)
    missing = sorted(set(config_schema.leaves(common.get_config())) - set(fields))
    assert not missing, f"{name} lacks shared fields {missing}"
    config.curation.name = "likelihood_filter"  # as --config.curation.name=likelihood_filter does
    config.curation.keep_quantiles = ((0.1, 1.0), (0.0, 0.9))
    sweep.validate(config)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_field_of_every_shipped_config_is_declared(name):
    config = load(name)
    declared, family_declared = config_schema.declared_fields(config.model.name)
    assert family_declared, f"family {config.model.name} has no config_fields"
    undeclared = sorted(set(config_schema.leaves(config)) - set(declared))
    assert not undeclared, f"{name}: undeclared fields {undeclared}"


def test_every_family_declares_its_config_fields():
    assert sorted(FAMILY_CONFIGS) == base.available_models()
    for family in base.available_models():
        fields = config_schema.family_fields(family)
        assert fields and all(isinstance(field, config_schema.Field) and field.doc for field in fields.values())


def family_field_cases():
    for family, config_name in FAMILY_CONFIGS.items():
        for field_name, field in sorted(config_schema.family_fields(family).items()):
            if field.kind in WRONG_KIND:
                yield pytest.param(
                    config_name, f"model.{field_name}", WRONG_KIND[field.kind], id=f"{family}.{field_name}"
                )


@pytest.mark.parametrize("config_name, path, bad", list(family_field_cases()))
def test_a_wrong_kind_in_any_family_field_is_one_line_naming_it(config_name, path, bad):
    one_line_error(runner.as_config({path: bad}, load(config_name)), path)


@pytest.mark.parametrize(
    "path", sorted(path for path, f in config_schema.shared_fields().items() if f.kind in WRONG_KIND)
)
def test_a_wrong_kind_in_any_shared_field_is_one_line_naming_it(path):
    kind = config_schema.shared_fields()[path].kind
    one_line_error(runner.as_config({path: WRONG_KIND[kind]}, gaussian.get_config()), path)


@pytest.mark.parametrize(
    "path, bad, message",
    [
        ("samples_per_generation", 0, "must be an integer >= 1"),
        ("root_seed", -1, "must be an integer >= 0"),
        ("keep_period", 0, "must be an integer >= 1 or None"),
        ("seeds", "many", "must be a positive count"),
        ("chain_block", -3, "must be 'auto' or an integer >= 1"),
        ("regime.real_fraction", (0.0, math.inf), "must be a finite number >= 0 and <= 1"),
        ("regime.name", (), "an empty tuple sweeps nothing"),
        ("model.true_std", 0.0, "must be a finite number > 0"),
        ("model.true_mean", math.nan, "must be a finite number"),  # NaN metrics before
        ("model.true_std", "1.0", "must be a finite number > 0"),  # a TypeError inside make_model before
        ("model.sampling_bias", (1.0, "x"), "must be a finite number >= 0"),
        ("model.estimator", "map", "unknown estimator 'map'; allowed: mle, unbiased"),
        ("curation.name", "sieve", "unknown curation 'sieve'"),
        ("curation.oversample", 0, "must be an integer >= 1"),
        ("curation.good_region_mass", 0.0, "must be a finite number > 0 and <= 1"),
        ("curation.keep_quantiles", 0.5, "must be a (low, high) pair"),
        ("curation.keep_good", 2.0, "must be a finite number >= 0 and <= 1"),
        ("report.collapse_tolerance", "wide", "must be a finite number > 0"),
        ("report.metrics", 3, "must be a string or a tuple of strings"),
        ("report.directions", "up", "must be a dict"),
        ("make_plots", 1, "must be True or False"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_field_and_what_is_allowed(path, bad, message):
    assert message in one_line_error(runner.as_config({path: bad}, gaussian.get_config()), path)


def test_a_misspelled_field_is_refused_with_the_closest_known_field():
    config = gaussian.get_config()
    config.regime.real_fracton = 0.1  # was silently ignored: the run went ahead with the default real fraction
    message = one_line_error(config, "regime.real_fracton")
    assert message == "config.regime.real_fracton: unknown field; did you mean config.regime.real_fraction?"
    config = gaussian.get_config()
    config.model.sampling_bais = 0.5
    assert "did you mean config.model.sampling_bias?" in one_line_error(config, "model.sampling_bais")


def test_a_sweepable_field_takes_a_single_value_or_a_tuple_in_python():
    config = gaussian.get_config()
    config.regime.name = "accumulate"  # a TypeError before: ml_collections locked the field to tuple
    config.seeds = (3, 1, 2)
    config.model.sampling_bias = (1.0, 0.8)
    config.regime.real_fraction = 0.1
    groups = sweep.expand(config)
    assert [group.labels["regime"] for group in groups] == ["accumulate"]
    assert sorted(set(groups[0].knobs["sampling_bias"])) == [0.8, 1.0]
    assert list(groups[0].knobs["seed"][:3]) == [3, 1, 2]
    config.regime.name = ("replace", "accumulate")  # and back to a sweep
    assert len(sweep.expand(config)) == 2


def test_the_inactive_curation_and_report_blocks_change_no_bit(gaussian_config):
    """common.py's blocks as written compute what a config without them computed: same labels, knobs and metrics."""
    without = runner.as_config({}, gaussian_config)
    del without["curation"], without["report"]
    with_blocks, bare = runner.simulate(gaussian_config), runner.simulate(without)
    assert sorted(with_blocks.knobs) == sorted(bare.knobs)
    for metric in bare.metrics:
        np.testing.assert_array_equal(with_blocks.metrics[metric], bare.metrics[metric])
    assert "curation" not in config_schema.without_unset(load("lm_tiny"))  # the LM keeps epoch-based training
    assert "curation" in config_schema.without_unset(load("mitigation_curation_lm"))


def assigned_literals(name: str) -> dict[str, object]:
    """config.<path> = <literal> assignments in a config's source (the last one per path)."""
    tree = ast.parse((CONFIG_DIR / f"{name}.py").read_text())
    assigned = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = ast.unparse(node.targets[0])
            if target.startswith("config."):
                try:
                    assigned[target[len("config.") :]] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return assigned


def parent_config(name: str):
    """The config a shipped config starts from (common.get_config() or another shipped config)."""
    source = (CONFIG_DIR / f"{name}.py").read_text()
    starts = [line.split("=", 1)[1].strip() for line in source.splitlines() if line.strip().startswith("config = ")]
    module = starts[0].split(".")[0]
    return common.get_config() if module == "common" else load(module)


@pytest.mark.parametrize("name", CONFIGS)
def test_no_config_resets_a_field_to_the_value_it_starts_from(name):
    """Shared fields live once in common.py: a config sets only what differs from the config it starts from."""
    parent = config_schema.leaves(parent_config(name))
    same = [
        path
        for path, value in assigned_literals(name).items()
        if path in parent and (value == parent[path] or (isinstance(value, list) and tuple(value) == parent[path]))
    ]
    assert not same, f"{name} re-sets {same} to the value it already has"


REPO = pathlib.Path(__file__).resolve().parent.parent
MISSPELLED_CONFIG = """
from experiments.configs import gaussian


def get_config():
    config = gaussian.get_config()
    config.regime.real_fracton = 0.1
    return config
"""


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--config.regime.real_fracton=0.1"],
            "config.regime.real_fracton: unknown field; did you mean config.regime.",
        ),
        (["--config.model.dim=abc"], "config.model.dim: cannot read 'abc' as int"),
        (["--config.model.true_std=nan"], "config.model.true_std: must be a finite number > 0"),
        (["--config.curation.name=sieve"], "config.curation.name: unknown curation 'sieve'"),
        (
            "misspelled config file",
            "config.regime.real_fracton: unknown field; did you mean config.regime.real_fraction?",
        ),
    ],
)
def test_a_bad_field_on_the_command_line_or_in_a_config_file_is_one_line_and_exit_2(tmp_path, arguments, message):
    config = "experiments/configs/gaussian.py"
    if arguments == "misspelled config file":
        config, arguments = str(tmp_path / "typo.py"), []
        (tmp_path / "typo.py").write_text(MISSPELLED_CONFIG)
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "experiments.main", f"--config={config}", f"--workdir={workdir}", *arguments]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not workdir.exists()  # refused before anything was written
