"""The gates package: one module per gate kind, each with a diff rule, and GATE_KINDS read from it."""

import ast
import pathlib

import pytest

from zoogate import gates
from zoogate.record import GATE_KINDS

GATES_DIR = pathlib.Path(gates.__file__).parent


def test_gate_kinds_are_the_package_modules():
    on_disk = sorted(p.stem for p in GATES_DIR.glob("*.py") if not p.stem.startswith("_"))
    assert list(GATE_KINDS) == on_disk


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_each_kind_has_a_diff_rule(kind):
    mod = gates.module(kind)
    assert callable(getattr(mod, "diff_value", None)) or callable(getattr(mod, "diff_across", None)), \
        f"zoogate/gates/{kind}.py defines neither diff_value nor diff_across"


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown gate kind 'latency'"):
        gates.module("latency")


def test_gate_records_are_built_by_keyword():
    root = GATES_DIR.parents[1]
    positional = []
    for path in sorted([*(root / "zoogate").rglob("*.py"), *(root / "hardware").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args and \
                    getattr(node.func, "id", getattr(node.func, "attr", None)) == "GateRecord":
                positional.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not positional, f"GateRecord built with positional arguments at {', '.join(positional)}"
