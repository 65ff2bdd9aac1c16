"""Readers for a device's result folder, and scoring them against labels (offline accuracy).

Formats (reference/hardware.md):
- ais_bench ``--outfmt TXT|BIN|NPY``: ``<input stem>_<output index>.<ext>`` per input file; output 0 is
  scored, other outputs and ``*_summary.json`` are skipped. TXT = rows of ``%f`` values, space separated,
  trailing space; like the ModelZoo postprocess we read the first row. BIN = raw float32 (class count from
  the size: 4000 or 4004 bytes). NPY = ``np.save``.
- vamp ``--path_output``: one ``.npz`` per image, key ``output_0``, shape (1, C); paired with the
  ``--datalist`` input list by stem when the names carry it, else i-th sorted output <-> i-th datalist line.
- plain arrays: per-image ``<stem>.npy`` files, or one (N, C) ``.npy`` file + an order file (one image name
  per line, row order) given as the datalist.

The class count (1000, or 1001 with background at index 0) is read from the data and reported; anything
else, a missing or unlabelled result, a truncated row, a NaN/Inf, a shape that disagrees with the other
files, an unreadable file or a pickled array is a ZoogateError naming the file.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.metrics import BACKGROUND_CLASSES, IMAGENET_CLASSES, AccuracySummary, TopkCounter, describe_classes

FORMATS = ("txt", "bin", "npy", "npz")
SUMMARY_SUFFIX = "_summary.json"
CHUNK = 512                      # files scored per step: bounds memory at ~CHUNK x C values
TXT_GROUP = 32                   # TXT files parsed per vectorised call (small arrays stay in cache: ~2x faster)
_OUTPUT_SUFFIX = re.compile(r"^(?P<stem>.+)_(?P<index>\d+)$")
_SHOWN = 5


@dataclass
class ResultSet:
    """What was found in a result folder and how each labelled image maps to its output."""

    source: Path
    fmt: str                                   # txt / bin / npy / npz
    kind: str                                  # "ais_bench" | "vamp" | "per-image npy" | "npy array"
    stems: list[str]                           # image stems in scoring order
    files: list[Path]                          # result file per stem (the array file for "npy array")
    rows: list[int] | None = None              # row per stem ("npy array" only)
    pairing: str = "by name"
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ScoredRun:
    summary: AccuracySummary
    results: ResultSet
    labels_source: str = ""

    @property
    def classes_assumed(self) -> str:
        return describe_classes(self.summary.num_classes)

    def provenance(self) -> dict:
        r = self.results
        return {"results": str(r.source), "format": r.fmt, "kind": r.kind, "pairing": r.pairing,
                "files_scored": len(r.stems), "labels": self.labels_source, "notes": list(r.notes)}


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


# ---------------------------------------------------------------- TXT: a vectorised exact parser

_MAX_DIGITS = 15                 # mantissas below 2**53: int -> float64 is exact, one division rounds once


def _fixed_point_parse(blob: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse whitespace-separated ``[+-]digits.dddddd`` tokens that all have the same number of decimals
    (what ``%f`` prints), token-parallel in numpy.

    Returns (values float64, token start offsets), bit-identical to ``float(token)``: the digits form an
    exact int64 mantissa m < 2**53 and the value is m / 10**d, one correctly rounded IEEE division, which
    is how float() rounds too. Returns None for anything else (exponents, nan, inf, mixed decimals, stray
    characters, > 15 digits); the caller then parses those lines token by token.
    """
    a = np.frombuffer(blob, dtype=np.uint8)
    # every byte must be whitespace, a digit, '.', '-' or '+' (counted with comparisons: table lookups are slower)
    is_ws = a <= ord(" ")
    n_ws = np.count_nonzero(is_ws)
    n_dots = np.count_nonzero(a == ord("."))
    n_signs = np.count_nonzero((a == ord("-")) | (a == ord("+")))
    n_digits = np.count_nonzero((a >= ord("0")) & (a <= ord("9")))
    if n_ws + n_dots + n_signs + n_digits != a.size:
        return None
    if np.count_nonzero((a == 32) | (a == 10) | (a == 13) | (a == 9)) != n_ws:
        return None                                  # other control characters: let the exact path complain
    # token ends = whitespace bytes that follow a non-whitespace byte; starts = just after the previous space
    wspos = np.flatnonzero(is_ws)
    if a.size and not is_ws[-1]:
        wspos = np.append(wspos, a.size)             # a token running to the end of the blob
    prev = np.concatenate(([-1], wspos[:-1]))
    token = wspos - prev > 1
    ends, starts = wspos[token], prev[token] + 1
    n_tok = starts.size
    if n_tok == 0:
        return np.zeros(0), starts
    first_dot = blob.find(b".", int(starts[0]), int(ends[0]))
    if first_dot < 0:
        return None
    decimals = int(ends[0]) - first_dot - 1
    length = ends - starts
    signed = (a[starts] == ord("-")) | (a[starts] == ord("+"))
    int_digits = length - decimals - 1 - signed
    if decimals < 1 or int_digits.min() < 1 or int_digits.max() + decimals > _MAX_DIGITS:
        return None
    # one dot per token, where the first token has it; signs only in front: the rest are digits
    if (a[ends - decimals - 1] != ord(".")).any() or n_dots != n_tok or n_signs != np.count_nonzero(signed):
        return None
    mantissa = np.zeros(n_tok, dtype=np.int64)
    for j in range(decimals):                                   # fraction digits, right to left
        mantissa += (a[ends - 1 - j] - 48).astype(np.int64) * 10 ** j
    for j in range(int(int_digits.max())):                      # integer digits, right to left
        valid = int_digits > j
        digit = a[np.where(valid, ends - decimals - 2 - j, 0)].astype(np.int64) - 48
        mantissa += np.where(valid, digit, 0) * 10 ** (j + decimals)
    values = mantissa.astype(np.float64) / 10.0 ** decimals
    neg = a[starts] == ord("-")
    values[neg] = -values[neg]
    return values, starts


def _parse_line_exact(line: bytes, path: Path) -> np.ndarray:
    values = []
    for i, tok in enumerate(line.split()):
        try:
            values.append(float(tok))
        except ValueError:
            raise ZoogateError(f"value {i + 1} of the first row, {tok[:40]!r}, is not a number", path) from None
    return np.asarray(values, dtype=np.float64)


def _first_line(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ZoogateError(f"cannot read result file: {exc.strerror}", path) from None
    return data.split(b"\n", 1)[0]


def read_txt_rows(paths: Sequence[Path]) -> list[np.ndarray]:
    """First row of each ais_bench TXT file as float64 (exactly float() of each printed value)."""
    rows: list[np.ndarray] = []
    for lo in range(0, len(paths), TXT_GROUP):
        group = paths[lo:lo + TXT_GROUP]
        lines = [_first_line(p) for p in group]
        blob = b"\n".join(lines)
        parsed = _fixed_point_parse(blob)
        if parsed is None:
            rows.extend(_parse_line_exact(line, p) for line, p in zip(lines, group))
            continue
        values, starts = parsed
        newlines = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == ord("\n"))
        rows.extend(np.split(values, np.searchsorted(starts, newlines)))     # tokens before each file's end
    return rows


# ---------------------------------------------------------------- BIN / NPY / NPZ

def read_bin(path: Path) -> np.ndarray:
    try:
        size = path.stat().st_size
        if size % 4:
            raise ZoogateError(f"{size} bytes is not a whole number of float32 values (truncated?)", path)
        return np.fromfile(path, dtype=np.float32)
    except OSError as exc:
        raise ZoogateError(f"cannot read result file: {exc.strerror}", path) from None


def _check_array(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise ZoogateError(f"{what} has dtype {arr.dtype}, expected real numbers", path)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ZoogateError(f"{what} has shape {arr.shape}, expected (1, C) or (C,) for one image", path)
    return arr


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ZoogateError("holds pickled Python objects; refusing to unpickle (np.load allow_pickle=False)",
                               path) from None
        raise ZoogateError(f"not a readable .npy file ({exc})", path) from None
    except (OSError, EOFError) as exc:
        raise ZoogateError(f"not a readable .npy file ({exc})", path) from None


def read_npy(path: Path) -> np.ndarray:
    return _check_array(_load_npy(path), path, "array")


def read_npz(path: Path, key: str = "output_0") -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise ZoogateError(f"no array {key!r} in it (has {z.files})", path)
            arr = z[key]
    except ZoogateError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ZoogateError(f"{key} holds pickled Python objects; refusing to unpickle", path) from None
        raise ZoogateError(f"not a readable .npz file ({exc})", path) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ZoogateError(f"not a readable .npz file ({exc})", path) from None
    return _check_array(arr, path, key)


_SINGLE_READERS: dict[str, Callable[[Path], np.ndarray]] = {"bin": read_bin, "npy": read_npy, "npz": read_npz}


# ---------------------------------------------------------------- finding result files

def _scan(folder: Path) -> tuple[list[str], list[str]]:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except FileNotFoundError:
        raise ZoogateError("result folder not found", folder) from None
    except NotADirectoryError:
        raise ZoogateError("not a folder (pass the folder ais_bench/vamp wrote, or a .npy array file)",
                           folder) from None
    except OSError as exc:
        raise ZoogateError(f"cannot list result folder: {exc.strerror}", folder) from None
    files = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    dirs = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    return files, dirs


def _natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: out_2.npz before out_10.npz (vamp does not zero-pad)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _pick_format(folder: Path, files: list[str], fmt: str, wanted: set) -> str:
    """--format, else the one format whose files name wanted images (else the only format present)."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ZoogateError(f"unknown result format {fmt!r}; one of auto, {', '.join(FORMATS)}")
        return fmt
    found = sorted({_ext(n) for n in files} & set(FORMATS))
    pairing = sorted({_ext(n) for n in files if _ext(n) in FORMATS and _image_stem(n.rsplit(".", 1)[0], wanted)})
    if len(pairing) == 1:
        return pairing[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ZoogateError("no result files (.txt, .bin, .npy, .npz) in it", folder)
    raise ZoogateError(f"holds several result formats ({', '.join(pairing or found)}): pass --format", folder)


def read_datalist(path: str | os.PathLike) -> list[str]:
    """Image stems of a vamp datalist / order file: one path or name per line, in order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ZoogateError("datalist not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoogateError(f"cannot read datalist: {exc}", path) from None
    stems = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        stem = Path(line.replace("\\", "/")).stem
        if stem in seen:
            raise ZoogateError(f"line {lineno}: {stem!r} listed twice (first on line {seen[stem]})", path)
        seen[stem] = lineno
        stems.append(stem)
    if not stems:
        raise ZoogateError("datalist is empty", path)
    return stems


def _image_stem(file_stem: str, wanted: Mapping[str, object] | set) -> tuple[str, int] | None:
    """(image stem, output index) of a result file: the whole stem when it names an image, else <stem>_<i>."""
    if file_stem in wanted:
        return file_stem, 0
    m = _OUTPUT_SUFFIX.match(file_stem)
    if m and m["stem"] in wanted:
        return m["stem"], int(m["index"])
    return None


def find_results(path: str | os.PathLike, labels: Mapping[str, int], *, fmt: str = "auto",
                 datalist: str | os.PathLike | None = None, allow_subset: bool = False) -> ResultSet:
    """Map every labelled image to its result file (or array row); errors name what does not fit."""
    source = Path(path)
    if source.is_file() and _ext(source.name) == "npy":
        return _array_file(source, labels, datalist, allow_subset)
    files, dirs = _scan(source)
    candidates = [n for n in files if _ext(n) in FORMATS]
    notes: list[str] = []
    if not candidates and len(dirs) == 1:
        # ais_bench without --output_dirname writes OUT/<timestamp>/: accept OUT when it holds exactly one
        inner = source / dirs[0]
        notes.append(f"results read from the only subfolder {dirs[0]}/")
        source = inner
        files, dirs = _scan(source)
    order = read_datalist(datalist) if datalist is not None else None
    wanted = set(order) if order is not None else set(labels)
    fmt = _pick_format(source, files, fmt, wanted)
    skipped = [n for n in files if _ext(n) != fmt]
    names = [n for n in files if _ext(n) == fmt]
    if not names:
        raise ZoogateError(f"no .{fmt} result files in it", source)
    by_stem: dict[str, Path] = {}
    unmatched: list[str] = []
    for name in names:
        hit = _image_stem(name[: -len(fmt) - 1], wanted)
        if hit is None:
            unmatched.append(name)
        elif hit[1] != 0:
            skipped.append(name)            # another output of a multi-output model
        elif hit[0] in by_stem:
            raise ZoogateError(f"two result files for image {hit[0]!r}: {by_stem[hit[0]].name} and {name}", source)
        else:
            by_stem[hit[0]] = source / name
    kind = {"npz": "vamp"}.get(fmt, "ais_bench")
    if fmt == "npy" and by_stem and all(p.stem == s for s, p in by_stem.items()):
        kind = "per-image npy"
    pairing = "by name"

    if order is not None and unmatched and not by_stem and len(names) == len(order):
        # vamp names outputs by position: the i-th sorted output belongs to the i-th datalist line
        by_stem = {stem: source / name for stem, name in zip(order, sorted(names, key=_natural_key))}
        unmatched, pairing = [], f"by position: sorted output names <-> {Path(datalist).name} lines"
    elif order is not None and unmatched and not by_stem:
        raise ZoogateError(f"{len(names)} .{fmt} outputs with names that are not in the datalist, and "
                           f"{len(order)} datalist lines: cannot pair them by name or by position", source)
    if unmatched:
        where = f"the datalist {datalist}" if order is not None else "the label file"
        raise ZoogateError(f"result file(s) for images not in {where}: {_listing(unmatched)} "
                           "(wrong folder or wrong label file?)", source / unmatched[0])

    if order is not None:
        no_label = [s for s in order if s not in labels]
        if no_label:
            raise ZoogateError(f"{len(no_label)} datalist image(s) have no label: {_listing(no_label)}", datalist)
        stems = [s for s in order if s in by_stem]
        absent = [s for s in order if s not in by_stem]
        if absent:
            raise ZoogateError(f"missing result for datalist image {absent[0]!r} "
                               f"({len(absent)} missing: {_listing(absent)})", source)
    else:
        stems = sorted(by_stem)
    _check_coverage(labels, stems, source, fmt, kind, allow_subset)
    return ResultSet(source=source, fmt=fmt, kind=kind, stems=stems, files=[by_stem[s] for s in stems],
                     pairing=pairing, skipped=skipped, notes=notes)


def _check_coverage(labels: Mapping[str, int], stems: list[str], source: Path, fmt: str, kind: str,
                    allow_subset: bool) -> None:
    have = set(stems)
    missing = [s for s in labels if s not in have]
    if missing and not allow_subset:
        expected = f"{missing[0]}_0.{fmt}" if kind == "ais_bench" else f"{missing[0]}.{fmt}"
        raise ZoogateError(f"missing result file for labelled image {missing[0]!r} ({len(missing)} of "
                           f"{len(labels)} labelled images have no result: {_listing(missing)}); "
                           "score a partial run on purpose with --allow-subset", source / expected)


def _array_file(path: Path, labels: Mapping[str, int], datalist, allow_subset: bool) -> ResultSet:
    if datalist is None:
        raise ZoogateError("a single (N, C) array needs an order file: pass --datalist FILE "
                           "(one image name per line, in row order)", path)
    order = read_datalist(datalist)
    arr = _load_npy(path, mmap=True)
    if arr.ndim != 2:
        raise ZoogateError(f"array has shape {arr.shape}, expected (N, C)", path)
    if arr.shape[0] != len(order):
        raise ZoogateError(f"{arr.shape[0]} rows but {len(order)} names in {datalist}", path)
    no_label = [s for s in order if s not in labels]
    if no_label:
        raise ZoogateError(f"{len(no_label)} listed image(s) have no label: {_listing(no_label)}", datalist)
    _check_coverage(labels, order, path, "npy", "npy array", allow_subset)
    return ResultSet(source=path, fmt="npy", kind="npy array", stems=order, files=[path] * len(order),
                     rows=list(range(len(order))), pairing=f"by row: {Path(datalist).name}")


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
        arr = _load_npy(results.source, mmap=True)
        classes.check(arr.shape[1], results.source, "each row")
        block = np.asarray(arr[results.rows[lo]:results.rows[hi - 1] + 1])
        if block.dtype.kind not in "fiu":
            raise ZoogateError(f"array has dtype {block.dtype}, expected real numbers", results.source)
        return block
    if results.fmt == "txt":
        rows = read_txt_rows(paths)
        what = "first row"
    else:
        reader = _SINGLE_READERS[results.fmt]
        rows = [reader(p) for p in paths]
        what = {"bin": "file (float32 values)", "npy": "array", "npz": "output_0"}[results.fmt]
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
    assert counter is not None
    return counter.summary()


def score_folder(path: str | os.PathLike, labels: Mapping[str, int], *, fmt: str = "auto",
                 datalist: str | os.PathLike | None = None, allow_subset: bool = False,
                 labels_source: str = "") -> ScoredRun:
    """find_results + score_results: the whole offline path in one call."""
    found = find_results(path, labels, fmt=fmt, datalist=datalist, allow_subset=allow_subset)
    return ScoredRun(score_results(found, labels), found, labels_source)


# ---------------------------------------------------------------- writing folders in the vendors' formats

def write_ais_bench(folder: str | os.PathLike, stems: Sequence[str], logits: np.ndarray, fmt: str = "txt",
                    summary: bool = True) -> Path:
    """Write outputs as ais_bench does: ``<stem>_0.<fmt>`` per input; TXT = ``%f`` rows, space separated,
    trailing space; BIN = raw float32 (``tofile``); NPY = ``np.save``. Plus ``<folder>_summary.json`` beside."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    logits = np.asarray(logits, dtype=np.float32)
    for stem, row in zip(stems, logits):
        out = folder / f"{stem}_0.{fmt}"
        row2d = row.reshape(-1, row.shape[-1])
        if fmt == "txt":
            out.write_text("".join("".join(f"{v:f} " for v in r) + "\n" for r in row2d))
        elif fmt == "bin":
            row.tofile(out)
        elif fmt == "npy":
            np.save(out, row.reshape(1, -1))
        else:
            raise ValueError(f"ais_bench writes txt, bin or npy, not {fmt!r}")
    if summary:
        # the shape ais_bench writes (hardware.md): per-timing {min, max, mean, median, percentile(99%), count}
        stats = lambda ms: {"min": ms, "max": ms, "mean": ms, "median": ms, "percentile(99%)": ms, "count": len(stems)}
        doc = {"NPU_compute_time": stats(1.0), "H2D_latency": stats(0.1), "D2H_latency": stats(0.05),
               "throughput": 1000.0}
        (folder.parent / f"{folder.name}{SUMMARY_SUFFIX}").write_text(json.dumps(doc) + "\n")
    return folder


def write_vamp(folder: str | os.PathLike, stems: Sequence[str], logits: np.ndarray, datalist: str | os.PathLike,
               output_names: Sequence[str] | None = None, input_dir: str = "/data/input_npz") -> Path:
    """Write vamp-style outputs (one .npz per image, key output_0, shape (1, C)) and the datalist of the
    inputs (one absolute ``<input_dir>/<stem>.npz`` per line, run order). Outputs are named ``<stem>.npz``
    unless `output_names` gives the names (e.g. numbered, to be paired by position)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(output_names) if output_names is not None else [f"{s}.npz" for s in stems]
    for name, row in zip(names, np.asarray(logits)):
        np.savez(folder / name, output_0=row.reshape(1, -1))
    Path(datalist).write_text("".join(f"{input_dir}/{s}.npz\n" for s in stems))
    return folder
