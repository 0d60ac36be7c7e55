"""The package's import graph: no cycle, and each layer imports only what README's Layout picture allows."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "collapse_jax")
LAYERS = ("core", "host", "store", "analysis", "models", "data", "testing")


def _module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
    return relative.removesuffix(".__init__")


def _modules() -> dict[str, str]:
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                found[_module_name(path)] = path
    return found


def _imports(path: str, modules: dict[str, str]) -> set[str]:
    """Package modules imported anywhere in the file (function-level imports included: they are edges too)."""
    edges = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("collapse_jax"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                edges.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            edges.update(a.name for a in node.names if a.name.startswith("collapse_jax"))
    return {edge for edge in edges if edge in modules}


GRAPH = {name: _imports(path, _modules()) for name, path in _modules().items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "top"


def test_the_package_has_no_import_cycle():
    done, on_path = set(), []

    def visit(module):
        if module in on_path:
            cycle = on_path[on_path.index(module) :] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        on_path.append(module)
        for imported in sorted(GRAPH[module]):
            # A package's __init__ importing its own submodule is how re-exports work, not a cycle between ideas.
            if not imported.startswith(module + "."):
                visit(imported)
        on_path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


# What each layer may import (besides itself). The core runs families only through the contract (models.base), and
# picks which of the two bit-identical generators their draws trace (models._threefry.generator).
ALLOWED = {
    "core": {"models.base", "models.contract", "models.fields", "models._threefry"},
    "store": set(),
    "analysis": {"store", "models.base", "models.contract", "data"},
    "data": set(),
}


def _allowed(source_layer: str, target: str) -> bool:
    target_layer = _layer(target)
    if target_layer == source_layer:
        return True
    allowed = ALLOWED[source_layer]
    return target_layer in allowed or target.removeprefix("collapse_jax.") in allowed


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    wrong = [
        f"{module} imports {target}"
        for module, targets in sorted(GRAPH.items())
        if _layer(module) == layer
        for target in sorted(targets)
        if not _allowed(layer, target)
    ]
    assert not wrong, "; ".join(wrong)


def test_a_family_imports_only_the_contract_its_own_helpers_and_data():
    wrong = []
    for module, targets in sorted(GRAPH.items()):
        if _layer(module) != "models":
            continue
        for target in targets:
            if _layer(target) not in ("models", "data"):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "; ".join(wrong)
