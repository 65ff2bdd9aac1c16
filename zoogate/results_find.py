"""Finding a device's result files and pairing them with labelled images: the formats zoogate.results scores.

ais_bench ``--outfmt TXT|BIN|NPY`` (``<input name cut at its first dot>_<output index>.<ext>``, output 0
scored, ``*_summary.json`` skipped), vamp ``--path_output`` npz (key ``output_0``) paired with its
``--datalist``, and plain per-image or (N, C) ``.npy`` arrays. A missing or unlabelled result, a shape that
disagrees with the other files, an unreadable file or a pickled array is a ZoogateError naming the file.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from zoogate import results_ais
from zoogate.errors import ZoogateError
from zoogate.files import read_text, split_entries
from zoogate.labelmap import first_dot, first_dot_collision, first_dot_index

FORMATS = ("txt", "bin", "npy", "npz")
SUMMARY_SUFFIX = "_summary.json"
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
    bin_dtype: str | None = None               # BIN output dtype (fp16 / fp32 / fp64), from the sizes
    devices: list[str] = field(default_factory=list)          # multi-device run: device folder names
    holders: dict[str, tuple[str, ...]] | None = None         # multi-device run: devices holding each image




def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


# ---------------------------------------------------------------- BIN / NPY / NPZ

def read_bin(path: Path, dtype: str | None = None) -> np.ndarray:
    """One ais_bench BIN output: dtype (fp16/fp32/fp64) from the size, or `dtype` when given."""
    return results_ais.read_bin(Path(path), dtype)


def _check_array(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise ZoogateError(f"{what} has dtype {arr.dtype}, expected real numbers", path)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ZoogateError(f"{what} has shape {arr.shape}, expected (1, C) or (C,) for one image", path)
    return arr


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
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
    return _check_array(load_npy(path), path, "array")


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


ARRAY_READERS: dict[str, Callable[[Path], np.ndarray]] = {"npy": read_npy, "npz": read_npz}


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
    files, dirs = split_entries(entries)
    return sorted(files), sorted(dirs)


def _natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: out_2.npz before out_10.npz (vamp does not zero-pad)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


class _Keys:
    """Matches result file stems to label keys: the whole stem (vamp, per-image npy), or ais_bench's
    ``<key>_<output index>``, where key is the input name cut at its first dot (labelmap)."""

    def __init__(self, labels: Mapping[str, int], order: list[str] | None):
        self.source = labels if order is None else dict.fromkeys(order, 0)
        self.wanted = set(self.source)
        self.short, self.collisions = first_dot_index(self.source)
        self.via_suffix = False

    def match(self, file_stem: str) -> tuple[str, int] | None:
        """(label key, output index) of a result file stem, or None."""
        if file_stem in self.wanted:
            return file_stem, 0
        m = _OUTPUT_SUFFIX.match(file_stem)
        if m is None:
            return None
        if m["stem"] in self.collisions:
            raise first_dot_collision(self.source, self.collisions[m["stem"]])
        key = m["stem"] if m["stem"] in self.wanted else self.short.get(m["stem"])
        if key is None:
            return None
        self.via_suffix = True
        return key, int(m["index"])

    def check_collisions(self) -> None:
        """ais_bench names cannot tell apart two labels that cut to one key: refuse them."""
        if self.collisions:
            raise first_dot_collision(self.source, next(iter(self.collisions.values())))


def _pick_format(folder: Path, files: list[str], fmt: str, keys: _Keys) -> str:
    """--format, else the one format whose files name wanted images (else the only format present)."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise ZoogateError(f"unknown result format {fmt!r}; one of auto, {', '.join(FORMATS)}")
        return fmt
    found = sorted({_ext(n) for n in files} & set(FORMATS))
    pairing = sorted({_ext(n) for n in files if _ext(n) in FORMATS and keys.match(n.rsplit(".", 1)[0])})
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
    text = read_text(path, "datalist", encoding="utf-8-sig")
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


@dataclass
class _Match:
    fmt: str
    kind: str
    by_stem: dict[str, Path]
    skipped: list[str]
    pairing: str
    notes: list[str]


def _positional_notes(names: list[str], ordered: list[str], others: list[str]) -> list[str]:
    """Say when plain sorted() of the output names would pair differently from their numeric order."""
    notes = []
    lexical = sorted(names)
    if lexical != ordered:
        wrong = sum(a != b for a, b in zip(lexical, ordered))
        notes.append(f"WARNING: output names are not zero-padded ({ordered[0]} ... {ordered[-1]}): plain sorted() "
                     f"order differs from their numeric order at {wrong} of {len(names)} positions; paired by "
                     "NUMERIC index. Decoders that pair by plain sorted() (the model zoo's vamp_npz_decode.py) "
                     "mis-pair this folder")
    if others:
        notes.append(f"WARNING: the output folder also holds {len(others)} other file(s) ({_listing(others)}): "
                     "decoders that pair every entry of sorted(os.listdir()) shift their pairing")
    return notes


def _match_folder(source: Path, keys: _Keys, fmt: str, order: list[str] | None, datalist) -> _Match:
    """Result files of one folder, each mapped to its label key."""
    files, _ = _scan(source)
    fmt = _pick_format(source, files, fmt, keys)
    summaries = [n for n in files if n.endswith(SUMMARY_SUFFIX)]
    skipped = [n for n in files if _ext(n) != fmt and n not in summaries]
    notes = [f"ais_bench summary {_listing(summaries)} in the result folder: skipped"] if summaries else []
    names = [n for n in files if _ext(n) == fmt]
    if not names:
        raise ZoogateError(f"no .{fmt} result files in it", source)
    by_stem: dict[str, Path] = {}
    unmatched: list[str] = []
    for name in names:
        hit = keys.match(name[: -len(fmt) - 1])
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
    if kind == "ais_bench" and keys.via_suffix:
        keys.check_collisions()
    pairing = "by name"

    if order is not None and unmatched and not by_stem and len(names) == len(order):
        # vamp names outputs by position: the i-th output (numeric order) belongs to the i-th datalist line
        ordered = sorted(names, key=_natural_key)
        by_stem = {stem: source / name for stem, name in zip(order, ordered)}
        unmatched = []
        pairing = f"by position: output names in numeric order <-> {Path(datalist).name} lines"
        notes += _positional_notes(names, ordered, [n for n in files if n not in names])
    elif order is not None and unmatched and not by_stem:
        raise ZoogateError(f"{len(names)} .{fmt} outputs with names that are not in the datalist, and "
                           f"{len(order)} datalist lines: cannot pair them by name or by position", source)
    if unmatched:
        where = f"the datalist {datalist}" if order is not None else "the label file"
        raise ZoogateError(f"result file(s) for images not in {where}: {_listing(unmatched)} "
                           "(wrong folder or wrong label file?)", source / unmatched[0])
    return _Match(fmt, kind, by_stem, skipped, pairing, notes)


def _has_results(files: list[str]) -> bool:
    return any(_ext(n) in FORMATS for n in files)


def find_results(path: str | os.PathLike, labels: Mapping[str, int], *, fmt: str = "auto",
                 datalist: str | os.PathLike | None = None, allow_subset: bool = False, pick: str | None = None,
                 output_dtype: str | None = None) -> ResultSet:
    """Map every labelled image to its result file (or array row); errors name what does not fit.

    `pick` ("newest") chooses among several ais_bench timestamp folders; `output_dtype` (fp16/fp32/fp64)
    pins the dtype of BIN outputs, which is otherwise read from their size."""
    source = Path(path)
    if source.is_file() and _ext(source.name) == "npy":
        return _array_file(source, labels, datalist, allow_subset)
    layout = results_ais.resolve_layout(source, _scan, _has_results, pick)
    source, notes = layout.folder, list(layout.notes)
    order = read_datalist(datalist) if datalist is not None else None
    keys = _Keys(labels, order)
    holders = None
    if layout.devices:
        if order is not None:
            raise ZoogateError("--datalist pairs vamp outputs by position; a multi-device ais_bench run is paired by "
                               "name: leave --datalist out", source)
        per_device: dict[str, dict[str, Path]] = {}
        first: _Match | None = None
        skipped: list[str] = []
        for device in layout.devices:
            if not _has_results(_scan(source / device)[0]):
                notes.append(f"WARNING: {device}/ holds no result files (a device that ran nothing, or failed?)")
                continue
            m = _match_folder(source / device, keys, first.fmt if first else fmt, None, None)
            first = first or m
            per_device[device] = m.by_stem
            skipped += [f"{device}/{n}" for n in m.skipped]
            notes += [f"{device}: {n}" for n in m.notes]
        if first is None:
            raise ZoogateError(f"none of the device folders ({', '.join(layout.devices)}) holds result files", source)
        by_stem, holders, shared = results_ais.merge_devices(per_device)
        notes += shared
        match = _Match(first.fmt, first.kind, by_stem, skipped, first.pairing, [])
    else:
        match = _match_folder(source, keys, fmt, order, datalist)
        notes += match.notes
    fmt, kind, by_stem = match.fmt, match.kind, match.by_stem

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
    if not stems:
        others = f" ({_listing(match.skipped)} are other outputs or formats)" if match.skipped else ""
        raise ZoogateError(f"no output-0 result file of a labelled image in it{others}: nothing to score", source)
    _check_coverage(labels, stems, source, fmt, kind, allow_subset)
    files = [by_stem[s] for s in stems]
    bin_dtype = results_ais.folder_bin_dtype(files, output_dtype) if fmt == "bin" else None
    if output_dtype is not None and fmt != "bin":
        notes.append(f"--output-dtype {output_dtype} not used: .{fmt} results carry their own dtype")
    return ResultSet(source=source, fmt=fmt, kind=kind, stems=stems, files=files, pairing=match.pairing,
                     skipped=match.skipped, notes=notes, bin_dtype=bin_dtype, devices=list(layout.devices),
                     holders=holders)


def _check_coverage(labels: Mapping[str, int], stems: list[str], source: Path, fmt: str, kind: str,
                    allow_subset: bool) -> None:
    have = set(stems)
    missing = [s for s in labels if s not in have]
    if missing and not allow_subset:
        expected = f"{first_dot(missing[0])}_0.{fmt}" if kind == "ais_bench" else f"{missing[0]}.{fmt}"
        raise ZoogateError(f"missing result file for labelled image {missing[0]!r} ({len(missing)} of "
                           f"{len(labels)} labelled images have no result: {_listing(missing)}); "
                           "score a partial run on purpose with --allow-subset", source / expected)


def _array_file(path: Path, labels: Mapping[str, int], datalist, allow_subset: bool) -> ResultSet:
    if datalist is None:
        raise ZoogateError("a single (N, C) array needs an order file: pass --datalist FILE "
                           "(one image name per line, in row order)", path)
    order = read_datalist(datalist)
    arr = load_npy(path, mmap=True)
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
