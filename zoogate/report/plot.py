"""The fps plot: throughput vs batch size per runner, floors dashed (matplotlib, Agg canvas)."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from zoogate.record import GateRecord

FPS_CHECKS = ("fps_floor", "fps_regression")
LOG_SCALE_SPAN = 30          # a log y axis when the largest fps is this many times the smallest


@dataclass
class FpsSeries:
    model: str
    runner: str
    fps: dict[int, float] = field(default_factory=dict)
    floors: dict[str, dict[int, float]] = field(default_factory=dict)   # floor kind -> bs -> fps


def fps_series(records: Iterable[GateRecord]) -> dict[str, list[FpsSeries]]:
    """model -> one series per runner: measured fps per bs and the floors (documented / host baseline)."""
    series: dict[tuple[str, str], FpsSeries] = {}
    for r in records:
        if r.gate != "throughput" or r.check not in FPS_CHECKS or r.bs is None:
            continue
        s = series.setdefault((r.model, r.runner), FpsSeries(r.model, r.runner))
        measured = r.measured if isinstance(r.measured, (int, float)) else None
        if measured is None:
            measured = (r.details.get("measurement") or {}).get("fps")
        if isinstance(measured, (int, float)) and math.isfinite(measured):
            if r.check == "fps_floor" or r.bs not in s.fps:
                s.fps[r.bs] = float(measured)
        floor = r.details.get("floor")
        if isinstance(floor, (int, float)):
            kind = "documented floor" if r.check == "fps_floor" else "host-baseline floor"
            s.floors.setdefault(kind, {})[r.bs] = float(floor)
    out: dict[str, list[FpsSeries]] = defaultdict(list)
    for (model, _), s in series.items():
        if s.fps:
            out[model].append(s)
    return dict(out)


def _fps_label(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def plot_fps(records: Iterable[GateRecord], path: str | os.PathLike, *, title: str = "") -> Path | None:
    """One panel per model: fps vs batch size (log2 axis), a solid line per runner, its floors dashed in the
    same colour. Returns None (and writes nothing) when the records hold no fps."""
    data = fps_series(records)
    if not data:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6 * len(data)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title)
    axes = fig.subplots(len(data), 1, squeeze=False)[:, 0]
    for ax, (model, series) in zip(axes, sorted(data.items())):
        values = [v for s in series for v in s.fps.values()] + \
                 [v for s in series for f in s.floors.values() for v in f.values()]
        positive = [v for v in values if v > 0] or [1.0]
        log_y = max(positive) / min(positive) > LOG_SCALE_SPAN    # runners orders of magnitude apart
        sizes = sorted({b for s in series for b in s.fps} | {b for s in series for f in s.floors.values() for b in f})
        for i, s in enumerate(sorted(series, key=lambda s: s.runner)):
            colour = f"C{i % 10}"
            bs = sorted(s.fps)
            ax.plot(bs, [s.fps[b] for b in bs], "-o", color=colour, lw=3, ms=7, mec="black",
                    label=f"{s.runner} measured")
            for b in bs:
                ax.annotate(_fps_label(s.fps[b]), (b, s.fps[b]), textcoords="offset points", xytext=(6, 6),
                            color=colour, fontsize=9)
            for kind, floor in sorted(s.floors.items()):
                fb = sorted(floor)
                if len(fb) == 1:       # a single batch size: a short dashed bar at the floor
                    ax.hlines(floor[fb[0]], fb[0] / 1.25, fb[0] * 1.25, colors=colour, linestyles="--", lw=2,
                              label=f"{s.runner} {kind}")
                else:
                    ax.plot(fb, [floor[b] for b in fb], "--", color=colour, lw=2, label=f"{s.runner} {kind}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        if log_y:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0, top=max(values) * 1.15 or 1.0)
        ax.set_title(f"{model}: throughput vs batch size" + (" (log scale)" if log_y else ""))
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/s")
        ax.grid(True, color="0.9")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
                  title="solid: measured (median step)\ndashed: floors", title_fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
