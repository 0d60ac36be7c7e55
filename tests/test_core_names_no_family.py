"""The core (collapse_jax/core) names no model family: it asks families for capabilities (models/contract.py)."""

import ast
import pathlib
import re

from collapse_jax.models import base

CORE = pathlib.Path(__file__).resolve().parents[1] / "collapse_jax" / "core"
# A string constant that is an identifier or a dotted module path ("gaussian", "collapse_jax.models.vae"); prose has
# spaces or punctuation and is not a name.
NAME_LIKE = re.compile(r"[A-Za-z_][\w.]*")


def family_names_used(source: str, families: set[str]) -> list[tuple[int, str]]:
    """(line, text) of each place `source` uses a family name as a name.

    Counted: a string constant whose whole value is an identifier or dotted path with a component equal to a family
    name ('"gaussian"', "'vae'", '"collapse_jax.models.lm"'), and an identifier equal to one: a variable, attribute,
    argument, function or class name, or a module in an import ('from collapse_jax.models import gaussian',
    'gaussian.GaussianModel'). Not counted: comments, docstrings and messages about the math ("the Gaussian
    transport map", "a Gaussian truth"), and identifiers that only contain a name ('gaussian_truth', 'LocationScale').
    """
    hits = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME_LIKE.fullmatch(node.value):
            names = node.value.split(".")
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.keyword) and node.arg is not None:
            names = [node.arg]
        elif isinstance(node, ast.alias):
            names = node.name.split(".") + ([node.asname] if node.asname else [])
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".")
        for name in names:
            if name in families:
                hits.append((node.lineno, name))
    return hits


def test_the_rule_catches_quoted_and_imported_family_names_but_not_prose():
    families = {"gaussian", "vae"}
    source = '''
"""Moves candidates along the Gaussian transport map toward a Gaussian truth."""
from collapse_jax.models import gaussian
SERVED = ("gaussian",)
def check(model_name, gaussian_truth):
    """The vae's rewards are its own."""
    return model_name == 'vae' or gaussian.GaussianModel or gaussian_truth
'''
    assert sorted(family_names_used(source, families)) == [
        (3, "gaussian"),
        (4, "gaussian"),
        (7, "gaussian"),
        (7, "vae"),
    ]


def test_no_core_module_names_a_built_in_family():
    families = set(base.available_models())
    assert {"gaussian", "vae", "lm"} <= families
    hits = [
        f"{path.relative_to(CORE.parents[1])}:{line}: {name!r}"
        for path in sorted(CORE.glob("*.py"))
        for line, name in family_names_used(path.read_text(), families)
    ]
    assert not hits, "the core names a family (ask for a capability instead): " + "; ".join(hits)
