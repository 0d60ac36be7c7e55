"""The random sub-stream table (core/streams.py): ids distinct per parent key, and the core folds in no other ids."""

import ast
import pathlib

from collapse_jax.core import streams
from collapse_jax.models import linear_regression

PACKAGE = pathlib.Path(streams.__file__).parents[1]


def test_stream_ids_are_distinct_within_each_parent_key():
    # Two purposes sharing an id off one parent key would draw the same bits: the "independent" streams would be equal.
    for table in (streams.CHAIN_KEY_STREAMS, streams.BATCH_KEY_STREAMS):
        assert len(set(table.values())) == len(table), table
        assert all(getattr(streams, name) == value for name, value in table.items())


def test_a_family_stream_off_the_chain_key_is_the_one_reserved_in_the_table():
    assert linear_regression.DESIGN_STREAM == streams.LINEAR_REGRESSION_DESIGN


def _literal_fold_ins(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fold_in":
            if len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_core_and_host_fold_in_only_named_stream_ids():
    """A literal id (fold_in(key, 3)) in the engine's layers bypasses the table, where a clash would go unseen."""
    files = sorted((PACKAGE / "core").glob("*.py")) + sorted((PACKAGE / "host").glob("*.py"))
    assert files
    literal = [hit for path in files for hit in _literal_fold_ins(path)]
    assert not literal, "; ".join(literal)
