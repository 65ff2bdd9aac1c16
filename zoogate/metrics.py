"""Top-k counting, Wilson score intervals, and the two accuracy JSON files (Ascend guide shape, ours).

Tie rule (used everywhere: offline scoring, live evaluation, tests' hand computations): classes are
ranked by score, highest first; equal scores are ordered by class index, lowest first — the order of
``np.argsort(-scores, kind="stable")`` and of ``np.argmax``. The label is in the top k when its rank
(0-based) is below k, i.e. when (#classes scoring strictly higher) + (#equal-scoring classes with a lower
index) < k. The ModelZoo postprocess uses an unstable argsort, so on exact ties it may differ; with
real-valued logits exact ties are rare and this rule makes the count reproducible.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.record import jsonable

TOPK = 5                       # ranks counted: top-1 .. top-5 (the Ascend metrics.json lists all five)
IMAGENET_CLASSES = 1000
BACKGROUND_CLASSES = 1001      # TF-slim / Cadene InceptionV4: index 0 = background
OFFSETS_CHECKED = (-1, 1)      # label offsets tried by the planted-offset check


def class_shift(num_classes: int, where: str | os.PathLike | None = None) -> int:
    """How far 0-based ImageNet labels move in a model's output space: 0 for 1000, +1 for 1001."""
    if num_classes == IMAGENET_CLASSES:
        return 0
    if num_classes == BACKGROUND_CLASSES:
        return 1
    raise ZoogateError(f"{num_classes} classes per output: expected 1000 (ImageNet) or 1001 (index 0 = background)",
                       where)


def describe_classes(num_classes: int) -> str:
    if num_classes == BACKGROUND_CLASSES:
        return "1001 classes: index 0 = background, labels shifted +1"
    return "1000 classes: labels used as given (0-based)"


def label_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target class under the tie rule above. scores (N, C), targets (N,)."""
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    rows = np.arange(scores.shape[0])
    own = scores[rows, targets][:, None]
    higher = (scores > own).sum(axis=1)
    tied_before = ((scores == own) & (np.arange(scores.shape[1])[None, :] < targets[:, None])).sum(axis=1)
    return higher + tied_before


def top1_indices(scores: np.ndarray) -> np.ndarray:
    """argmax per row (lowest index among equal maxima, the same rule)."""
    return np.argmax(scores, axis=1)


def topk_indices(scores: np.ndarray, k: int = TOPK) -> np.ndarray:
    """The k best classes per row, best first, ties by lower index (stable descending sort)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (fractions in [0, 1])."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the exact interval always contains p (and reaches 0 at k = 0, 1 at k = n); float rounding may not
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


@dataclass
class AccuracySummary:
    """Counts from one scored run: what the gates and both JSON files are built from."""

    n: int
    hits: tuple[int, ...]              # hits[k-1] = images whose label is in the top k, k = 1..5
    num_classes: int                   # 1000 or 1001, as found in the outputs
    offset_top1: dict[int, int] = field(default_factory=dict)   # label offset -> top-1 hits under it
    nonfinite_rows: int = 0            # live runs only: outputs with NaN/Inf (scored as they rank)

    @property
    def label_shift(self) -> int:
        return class_shift(self.num_classes)

    @property
    def classes_assumed(self) -> str:
        return describe_classes(self.num_classes)

    def accuracy(self, k: int) -> float:
        return self.hits[k - 1] / self.n if self.n else 0.0

    @property
    def top1(self) -> float:
        return self.accuracy(1)

    @property
    def top5(self) -> float:
        return self.accuracy(5)

    def interval(self, k: int, confidence: float) -> tuple[float, float]:
        return wilson_interval(self.hits[k - 1], self.n, confidence)


class TopkCounter:
    """Accumulates ranks chunk by chunk: bounded memory whatever the number of images."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.shift = class_shift(num_classes)
        self.n = 0
        self.hits = np.zeros(TOPK, dtype=np.int64)
        self.offset_hits = {d: 0 for d in OFFSETS_CHECKED}

    def add_scores(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """scores (N, C) in the model's class space; labels 0-based ImageNet labels."""
        targets = np.asarray(labels, dtype=np.int64) + self.shift
        ranks = label_ranks(scores, targets)
        self._add(ranks, top1_indices(scores), targets)

    def add_topk(self, top: np.ndarray, labels: np.ndarray) -> None:
        """top (N, 5) class indices best first (topk_indices), labels 0-based."""
        targets = np.asarray(labels, dtype=np.int64) + self.shift
        top = np.asarray(top, dtype=np.int64)
        match = top == targets[:, None]
        ranks = np.where(match.any(axis=1), match.argmax(axis=1), TOPK)
        self._add(ranks, top[:, 0], targets)

    def _add(self, ranks: np.ndarray, top1: np.ndarray, targets: np.ndarray) -> None:
        self.n += len(ranks)
        for k in range(1, TOPK + 1):
            self.hits[k - 1] += int((ranks < k).sum())
        for d in OFFSETS_CHECKED:
            self.offset_hits[d] += int((top1 == targets + d).sum())

    def summary(self, nonfinite_rows: int = 0) -> AccuracySummary:
        return AccuracySummary(n=self.n, hits=tuple(int(h) for h in self.hits), num_classes=self.num_classes,
                               offset_top1=dict(self.offset_hits), nonfinite_rows=nonfinite_rows)


# ---------------------------------------------------------------- JSON files

def _percent_text(fraction: float) -> str:
    # the ModelZoo postprocess writes str(round(acc * 100, 2)) + "%": "79.99%", "80.0%"
    return f"{round(fraction * 100, 2)}%"


def modelzoo_metrics(summary: AccuracySummary) -> dict:
    """The Ascend ModelZoo postprocess's metrics.json: title + key/value list, top-1 .. top-5."""
    values = [{"key": "Number of images", "value": str(summary.n)},
              {"key": "Number of classes", "value": str(summary.num_classes)}]
    values += [{"key": f"Top{k} accuracy", "value": _percent_text(summary.accuracy(k))} for k in range(1, TOPK + 1)]
    return {"title": "Overall statistical evaluation", "value": values}


def rich_metrics(summary: AccuracySummary, *, model: str, row: str | None, confidence: float,
                 provenance: dict[str, Any] | None = None, skipped: list[str] | None = None,
                 gates: list[dict] | None = None) -> dict:
    """Our own record of a scored run: numbers, intervals, what was assumed, where it came from."""
    def interval(k: int) -> list[float]:
        lo, hi = summary.interval(k, confidence)
        return [round(lo * 100, 4), round(hi * 100, 4)]

    return {
        "model": model,
        "baseline_row": row or "reference",
        "n": summary.n,
        "top1": round(summary.top1 * 100, 4),
        "top5": round(summary.top5 * 100, 4),
        "topk": {str(k): round(summary.accuracy(k) * 100, 4) for k in range(1, TOPK + 1)},
        "hits": {str(k): summary.hits[k - 1] for k in range(1, TOPK + 1)},
        "interval_confidence": confidence,
        "top1_interval": interval(1),
        "top5_interval": interval(5),
        "num_classes": summary.num_classes,
        "classes_assumed": summary.classes_assumed,
        "offset_top1": {f"{d:+d}": h for d, h in sorted(summary.offset_top1.items())},
        "nonfinite_rows": summary.nonfinite_rows,
        "files_skipped": list(skipped or []),
        "provenance": dict(provenance or {}),
        "gates": list(gates or []),
        "units": "percent",
    }


def write_json_atomic(path: str | os.PathLike, payload: dict, indent: int | None = 2) -> Path:
    """Write JSON next to its final name, then os.replace: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=indent, ensure_ascii=False, default=jsonable)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise ZoogateError(f"cannot write: {exc.strerror or exc}", path) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def summary_to_dict(summary: AccuracySummary) -> dict:
    d = asdict(summary)
    d["offset_top1"] = {str(k): v for k, v in summary.offset_top1.items()}
    return d
