"""Which test arguments a test parametrizes itself (so zoogate's hooks leave them alone)."""

from __future__ import annotations

import pytest


def argnames(mark) -> list[str]:
    """The argument names of one ``@pytest.mark.parametrize`` mark: ``"a, b"`` or ``("a", "b")``."""
    names = mark.kwargs.get("argnames", mark.args[0] if mark.args else ())
    if isinstance(names, str):
        return [n.strip() for n in names.split(",") if n.strip()]
    return [str(n) for n in names]


def explicitly_parametrized(metafunc: pytest.Metafunc, argname: str) -> bool:
    """True when a parametrize mark on the test (or its class / module) names ``argname`` exactly."""
    return any(argname in argnames(m) for m in metafunc.definition.iter_markers("parametrize"))
