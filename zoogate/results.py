"""Readers for a device's result folder, and scoring them against labels (offline accuracy).

Formats:
- ais_bench ``--outfmt TXT|BIN|NPY``: ``<input name cut at its first dot>_<output index>.<ext>`` per input
  file; output 0 is scored, other outputs and ``*_summary.json`` (beside, or inside as ``_summary.json``)
  are skipped. TXT = rows of ``%f`` values, space separated, trailing space; like the ModelZoo postprocess
  we read the first row. BIN = the raw output dtype (dtype and class count from the size), NPY = ``np.save``.
  Timestamp folders and multi-device runs: zoogate.results_ais.
- vamp ``--path_output``: one ``.npz`` per image, key ``output_0``, shape (1, C); paired with the
  ``--datalist`` input list by stem when the names carry it, else by position: outputs in NUMERIC order of
  their names <-> datalist lines (a warning when that differs from plain sorted order).
- the VACC Relay top-k TXT (one file, 5 lines per image): zoogate.results_vacc.
- plain arrays: per-image ``<stem>.npy`` files, or one (N, C) ``.npy`` file + an order file (one image name
  per line, row order) given as the datalist.

The class count (1000, or 1001 with background at index 0) is read from the data and reported; anything
else, a missing or unlabelled result, a truncated row, a NaN/Inf, a shape that disagrees with the other
files, an unreadable file or a pickled array is a ZoogateError naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from zoogate import results_ais
from zoogate.errors import ZoogateError
from zoogate.metrics import BACKGROUND_CLASSES, IMAGENET_CLASSES, AccuracySummary, TopkCounter, describe_classes
from zoogate.results_find import (FORMATS, SUMMARY_SUFFIX, ResultSet, ARRAY_READERS, load_npy,  # noqa: F401
                                  find_results, read_bin, read_datalist, read_npy, read_npz)
from zoogate.results_txt import read_txt_rows  # noqa: F401 (re-exported)
from zoogate.vendor_writers import write_ais_bench, write_ais_bench_devices, write_vamp  # noqa: F401 (re-exported)

CHUNK = 512                      # files scored per step: bounds memory at ~CHUNK x C values


@dataclass
class ScoredRun:
    summary: AccuracySummary
    results: ResultSet
    labels_source: str = ""
    per_device: dict[str, AccuracySummary] = field(default_factory=dict)   # multi-device runs
    by_name: object | None = None             # Relay TXT: results_vacc.NameScore (eval_topk-compatible)

    @property
    def classes_assumed(self) -> str:
        return describe_classes(self.summary.num_classes)

    def provenance(self) -> dict:
        r = self.results
        out = {"results": str(r.source), "format": r.fmt, "kind": r.kind, "pairing": r.pairing,
               "files_scored": len(r.stems), "labels": self.labels_source, "notes": list(r.notes)}
        if r.bin_dtype:
            out["output_dtype"] = r.bin_dtype
        if r.devices:
            out["devices"] = list(r.devices)
        return out


# ---------------------------------------------------------------- scoring

class _ClassCount:
    """The first file fixes the class count (1000 or 1001); every other file must agree."""

    def __init__(self) -> None:
        self.value: int | None = None
        self.first: Path | None = None

    def check(self, n_values: int, path: Path, what: str) -> None:
        if self.value is None:
            if n_values not in (IMAGENET_CLASSES, BACKGROUND_CLASSES):
                hint = " (truncated row?)" if what == "first row" and n_values < IMAGENET_CLASSES else ""
                raise ZoogateError(f"{what} has {n_values} values{hint}: expected 1000 classes, or 1001 with "
                                   "background at index 0", path)
            self.value, self.first = n_values, path
        elif n_values != self.value:
            trunc = "truncated row? " if what == "first row" and n_values < self.value else ""
            raise ZoogateError(f"{what} has {n_values} values, expected {self.value} "
                               f"({trunc}{self.first.name} and the others have {self.value})", path)


def _chunk_values(results: ResultSet, lo: int, hi: int, classes: _ClassCount) -> np.ndarray:
    paths = results.files[lo:hi]
    if results.kind == "npy array":
        arr = load_npy(results.source, mmap=True)
        classes.check(arr.shape[1], results.source, "each row")
        block = np.asarray(arr[results.rows[lo]:results.rows[hi - 1] + 1])
        if block.dtype.kind not in "fiu":
            raise ZoogateError(f"array has dtype {block.dtype}, expected real numbers", results.source)
        return block
    if results.fmt == "txt":
        rows = read_txt_rows(paths)
        what = "first row"
    elif results.fmt == "bin":
        rows = [read_bin(p, results.bin_dtype) for p in paths]
        what = f"file ({results.bin_dtype} values)"
    else:
        reader = ARRAY_READERS[results.fmt]
        rows = [reader(p) for p in paths]
        what = {"npy": "array", "npz": "output_0"}[results.fmt]
    for row, p in zip(rows, paths):
        classes.check(row.size, p, what)
    return np.stack(rows)


def score_results(results: ResultSet, labels: Mapping[str, int], chunk: int = CHUNK) -> AccuracySummary:
    """Top-1..top-5 over every paired image; reads `chunk` files at a time (bounded memory)."""
    classes = _ClassCount()
    counter: TopkCounter | None = None
    for lo in range(0, len(results.stems), chunk):
        hi = min(lo + chunk, len(results.stems))
        values = _chunk_values(results, lo, hi, classes)
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            bad = lo + int(np.flatnonzero(~finite)[0])
            where = results.files[bad]
            row = f"row {results.rows[bad]} " if results.rows is not None else ""
            raise ZoogateError(f"{row}holds NaN or Inf logits (image {results.stems[bad]!r})", where)
        if counter is None:
            counter = TopkCounter(classes.value)
        counter.add_scores(values, np.fromiter((labels[s] for s in results.stems[lo:hi]), dtype=np.int64))
    if counter is None:
        raise ZoogateError("no results to score", results.source)
    return counter.summary()


def score_folder(path: str | os.PathLike, labels: Mapping[str, int] | None, *, fmt: str = "auto",
                 datalist: str | os.PathLike | None = None, allow_subset: bool = False,
                 labels_source: str = "", pick: str | None = None, output_dtype: str | None = None,
                 class_list: str | os.PathLike | None = None) -> ScoredRun:
    """find_results + score_results: the whole offline path in one call. A Relay top-k TXT file goes to
    results_vacc (labels may then be None: ground truth from each image's synset folder); a multi-device
    run is scored as one run and per device."""
    from zoogate import results_vacc

    if fmt == "relay" and not Path(path).is_file():
        raise ZoogateError("--format relay reads one Relay top-k TXT file; this is not a file", path)
    if results_vacc.is_relay_file(path, fmt):
        return results_vacc.score_relay(path, labels, class_list=class_list, allow_subset=allow_subset,
                                        labels_source=labels_source)
    if labels is None:
        raise ZoogateError("--labels is needed for this result folder (only a Relay top-k TXT can take the "
                           "ground truth from its image paths)", path)
    if class_list is not None:
        raise ZoogateError("--class-list checks the class names of a Relay top-k TXT; these results print no names",
                           class_list)
    found = find_results(path, labels, fmt=fmt, datalist=datalist, allow_subset=allow_subset, pick=pick,
                         output_dtype=output_dtype)
    if not found.devices:
        return ScoredRun(score_results(found, labels), found, labels_source)

    def score(stems: list[str], files: list[Path]) -> AccuracySummary:
        part = ResultSet(source=found.source, fmt=found.fmt, kind=found.kind, stems=stems, files=files,
                         bin_dtype=found.bin_dtype)
        return score_results(part, labels)

    total, per_device = results_ais.score_by_device(found.stems, found.files, found.holders, found.devices, score)
    return ScoredRun(total, found, labels_source, per_device=per_device)
