"""The gates, one module per gate kind: the module's name is the kind (``GateRecord.gate``).

A kind's module holds its gate functions (each measures one thing and returns a GateRecord built with a
named tolerance) and ``diff_value(old, new)``, the rule ``zoogate diff`` applies to two records of that
kind: ``(old value, new value, regression?, note)``, or None when the records carry no comparable value.
A kind whose changes span records (throughput's fps by model, runner and batch size) also has
``diff_across(old_records, new_records)``.

A new kind is one module here; GATE_KINDS is read from the package, so the record, the report and the diff
know it without further edits.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

GATE_KINDS: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                                           if not m.name.startswith("_")))


def module(kind: str) -> ModuleType:
    """The module of one gate kind (imported on first use: the architecture gates pull in torch)."""
    if kind not in GATE_KINDS:
        raise ValueError(f"unknown gate kind {kind!r}: one of {', '.join(GATE_KINDS)}")
    return importlib.import_module(f"{__name__}.{kind}")
