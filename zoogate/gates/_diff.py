"""What the kinds' diff rules share: a record's number, and the named tolerance a record was gated with."""

from __future__ import annotations

import math
import re
from typing import Any

from zoogate.errors import ZoogateError


def number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def tolerance_named(text: str, fallback: str):
    """The tolerance a record's tolerance text starts with (``"fp16 (atol ...)"``), else ``fallback``; None
    when neither is defined (a report written by another version)."""
    from zoogate import baselines

    m = re.match(r"[A-Za-z0-9_]+", text or "")
    for name in ([m.group(0)] if m else []) + [fallback]:
        try:
            return baselines.tolerance(name)
        except ZoogateError:
            continue
    return None
