"""ais_bench result layouts: BIN outputs in any dtype, timestamp folders, multi-device runs.

- BIN is the raw output tensor in the model's output dtype, no header: the dtype and the class count
  follow from the size (1000 or 1001 classes x 2, 4 or 8 bytes: 2000/2002, 4000/4004, 8000/8008 bytes,
  all distinct); ``--output-dtype`` pins the dtype. One run writes one dtype: files that disagree are an
  error naming both.
- ``--output OUT`` without ``--output_dirname`` writes ``OUT/%Y_%m_%d-%H_%M_%S/``: OUT holding one folder is
  read through it; OUT holding several timestamp folders is an error naming them, or ``--pick newest``
  takes the newest (timestamps sort by name). One multi-device run whose devices got timestamps a second
  apart (the 2023 code takes one per device) is read as that one run.
- Multi-device runs (``--device 0,1``) write ``RUN/device<id>/`` (2023) or ``RUN/device<id>_<index>/``
  (2025) with ``RUN/<that name>_summary.json``. 2023 splits the inputs over the devices; 2025 gives every
  device all of them unless ``--divide_input``. The run is scored once over every image (an image on
  several devices must have byte-identical results there, and counts once) and once per device.
"""

from __future__ import annotations

import filecmp
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.metrics import BACKGROUND_CLASSES, IMAGENET_CLASSES, AccuracySummary
from zoogate.vendor_writers import OUTPUT_DTYPES

TIMESTAMP = re.compile(r"^\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}$")     # time.strftime("%Y_%m_%d-%H_%M_%S")
DEVICE_DIR = re.compile(r"^device(?P<device>\d+)(?:_(?P<index>\d+))?$")
PICKS = ("newest",)
_MAX_DEPTH = 3          # OUT/<timestamp>/device<i>/: the deepest layout ais_bench writes
_CLOCK_TICK_S = 2.0     # timestamp folders of one multi-device run lie at most this far apart
_SHOWN = 5


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


# ---------------------------------------------------------------- BIN: dtype from the size

def bin_fits(size: int, dtype: str | None = None) -> list[tuple[str, int]]:
    """(dtype, classes) pairs a BIN of `size` bytes can be."""
    return [(name, classes) for name, dt in OUTPUT_DTYPES.items() if dtype in (None, name)
            for classes in (IMAGENET_CLASSES, BACKGROUND_CLASSES) if classes * np.dtype(dt).itemsize == size]


def expected_bin_sizes(dtype: str | None = None) -> str:
    return ", ".join(f"{IMAGENET_CLASSES * np.dtype(dt).itemsize} or {BACKGROUND_CLASSES * np.dtype(dt).itemsize} "
                     f"bytes ({name})" for name, dt in OUTPUT_DTYPES.items() if dtype in (None, name))


def bin_dtype(path: Path, size: int, dtype: str | None = None) -> str:
    """The output dtype of one BIN file from its size (and --output-dtype when given)."""
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        raise ZoogateError(f"unknown output dtype {dtype!r}; one of {', '.join(OUTPUT_DTYPES)}")
    fits = bin_fits(size, dtype)
    if not fits:
        pinned = f" of {dtype}" if dtype else ""
        raise ZoogateError(f"{size} bytes is no output{pinned} of 1000 or 1001 classes: expected "
                           f"{expected_bin_sizes(dtype)} (truncated, or another model's output?)", path)
    dtypes = sorted({d for d, _ in fits})
    if len(dtypes) > 1:
        raise ZoogateError(f"{size} bytes fits {' or '.join(dtypes)} outputs: pass --output-dtype", path)
    return dtypes[0]


def read_bin(path: Path, dtype: str | None = None) -> np.ndarray:
    try:
        found = bin_dtype(path, path.stat().st_size, dtype)
        return np.fromfile(path, dtype=OUTPUT_DTYPES[found])
    except OSError as exc:
        raise ZoogateError(f"cannot read result file: {exc.strerror}", path) from None


def folder_bin_dtype(paths: Sequence[Path], dtype: str | None = None) -> str | None:
    """The one dtype of a run's BIN files (ZoogateError naming two files that disagree)."""
    first: tuple[str, Path] | None = None
    for p in paths:
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise ZoogateError(f"cannot read result file: {exc.strerror}", p) from None
        found = bin_dtype(p, size, dtype)
        if first is None:
            first = (found, p)
        elif found != first[0]:
            raise ZoogateError(f"{size} bytes is a {found} output, but {first[1]} is {first[0]}: one run writes one "
                               "dtype (mixed runs in one folder?)", p)
    return first[0] if first else None


# ---------------------------------------------------------------- which folder holds the run

@dataclass
class Layout:
    folder: Path                                   # holds the result files, or the device folders
    devices: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _device_order(name: str) -> tuple[int, int]:
    m = DEVICE_DIR.match(name)
    return (int(m["index"]) if m["index"] is not None else int(m["device"]), int(m["device"]))


def _stamp_seconds(name: str) -> float:
    import datetime

    return datetime.datetime.strptime(name, "%Y_%m_%d-%H_%M_%S").timestamp()


def _one_run_split_by_the_clock(source: Path, stamps: list[str], dirs: list[str],
                                scan: Callable[[Path], tuple[list[str], list[str]]]) -> list[str]:
    """ais_bench 2023 takes each device's timestamp in its own loop turn: one multi-device run can land in
    timestamp folders a second apart. Their device folders, when that is what they are, else []."""
    if len(stamps) < 2 or len(stamps) != len(dirs) or _stamp_seconds(stamps[-1]) - _stamp_seconds(stamps[0]) > \
            _CLOCK_TICK_S:
        return []
    found: list[str] = []
    for stamp in stamps:
        files, inner = scan(source / stamp)
        if not inner or any(not DEVICE_DIR.match(d) for d in inner) or any(not f.endswith("_summary.json") for f in files):
            return []
        found += [f"{stamp}/{d}" for d in inner]
    names = [f.split("/")[1] for f in found]
    if len(set(names)) != len(names):
        return []                    # a device twice: separate runs
    return sorted(found, key=lambda f: _device_order(f.split("/")[1]))


def resolve_layout(source: Path, scan: Callable[[Path], tuple[list[str], list[str]]],
                   has_results: Callable[[list[str]], bool], pick: str | None = None) -> Layout:
    """Walk from --results to the folder of one run: through a lone subfolder, to the newest timestamp
    folder with --pick newest; a folder of device<i>[_<index>] subfolders is a multi-device run."""
    if pick is not None and pick not in PICKS:
        raise ZoogateError(f"--pick: expected one of {', '.join(PICKS)}, got {pick!r}")
    notes: list[str] = []
    for _ in range(_MAX_DEPTH):
        files, dirs = scan(source)
        devices = [d for d in dirs if DEVICE_DIR.match(d)]
        if has_results(files):
            if devices:
                raise ZoogateError(f"holds result files and device folders ({_listing(devices)}): pass one "
                                   "device folder, or a folder holding only device folders", source)
            return Layout(source, [], notes)
        if devices:
            others = [d for d in dirs if d not in devices]
            if others:
                raise ZoogateError(f"holds device folders ({_listing(devices)}) and other folders "
                                   f"({_listing(others)}): not one ais_bench multi-device run", source)
            devices.sort(key=_device_order)
            notes.append(f"multi-device run: {len(devices)} device folders ({', '.join(devices)})")
            return Layout(source, devices, notes)
        if len(dirs) == 1:
            notes.append(f"results read from the only subfolder {dirs[0]}/")
            source = source / dirs[0]
            continue
        stamps = sorted(d for d in dirs if TIMESTAMP.match(d))
        split = _one_run_split_by_the_clock(source, stamps, dirs, scan)
        if split:
            notes.append(f"multi-device run over {len(stamps)} timestamp folders ({', '.join(stamps)}) a second or "
                         f"two apart with distinct devices: one run whose clock ticked between devices; "
                         f"{len(split)} device folders ({', '.join(split)})")
            return Layout(source, split, notes)
        if len(stamps) > 1 and pick == "newest":
            newest = stamps[-1]
            others = [d for d in dirs if d != newest]
            notes.append(f"--pick newest: read {newest}/, the newest of {len(stamps)} timestamp folders "
                         f"(not read: {_listing(others)})")
            source = source / newest
            continue
        if len(stamps) > 1:
            raise ZoogateError(f"holds {len(stamps)} ais_bench runs (timestamp folders {_listing(stamps)}): pass one "
                               "of them as --results, or --pick newest to read the newest", source)
        if dirs:
            raise ZoogateError(f"no result files here, but {len(dirs)} subfolders ({_listing(dirs)}): pass the one to "
                               "score as --results", source)
        return Layout(source, [], notes)
    return Layout(source, [], notes)


# ---------------------------------------------------------------- one run over several devices

def merge_devices(per_device: Mapping[str, Mapping[str, Path]]) -> tuple[dict[str, Path], dict[str, tuple[str, ...]],
                                                                       list[str]]:
    """(image -> result file, image -> devices holding it, notes). An image on several devices must have
    byte-identical files there; it is then scored once for the run."""
    files: dict[str, Path] = {}
    holders: dict[str, tuple[str, ...]] = {}
    for device, found in per_device.items():
        for stem, path in found.items():
            if stem not in files:
                files[stem], holders[stem] = path, (device,)
                continue
            if not filecmp.cmp(files[stem], path, shallow=False):
                raise ZoogateError(f"image {stem!r} has different results on two devices: {files[stem]} and {path} "
                                   "(score each device folder on its own)", path)
            holders[stem] += (device,)
    shared = sum(1 for h in holders.values() if len(h) > 1)
    notes = []
    if shared:
        notes.append(f"{shared} image(s) on several devices with identical results, counted once in the run "
                     "(ais_bench 2025 gives every device the whole input unless --divide_input)")
    return files, holders, notes


def add_summaries(parts: Sequence[tuple[AccuracySummary, Path]]) -> AccuracySummary:
    """One summary from disjoint groups of images; their class counts must agree."""
    first, where = parts[0]
    for s, p in parts[1:]:
        if s.num_classes != first.num_classes:
            raise ZoogateError(f"{s.num_classes} classes per output, but {where} has {first.num_classes}: devices "
                               "of one run write the same model's outputs", p)
    offsets = {d: sum(s.offset_top1.get(d, 0) for s, _ in parts) for d in first.offset_top1}
    return AccuracySummary(n=sum(s.n for s, _ in parts),
                           hits=tuple(sum(s.hits[k] for s, _ in parts) for k in range(len(first.hits))),
                           num_classes=first.num_classes, offset_top1=offsets)


def score_by_device(stems: Sequence[str], files: Sequence[Path], holders: Mapping[str, tuple[str, ...]],
                    devices: Sequence[str], score: Callable[[list[str], list[Path]], AccuracySummary]
                    ) -> tuple[AccuracySummary, dict[str, AccuracySummary]]:
    """(the run's summary, per-device summaries). Images are grouped by the devices holding them and each
    group is scored once, so every file is read once however many devices share it."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, stem in enumerate(stems):
        groups.setdefault(holders[stem], []).append(i)
    if not groups:
        return score([], []), {}
    scored = {key: (score([stems[i] for i in idx], [files[i] for i in idx]), files[idx[0]])
              for key, idx in groups.items()}
    total = add_summaries(list(scored.values()))
    per_device = {}
    for device in devices:
        mine = [v for key, v in scored.items() if device in key]
        if mine:
            per_device[device] = add_summaries(mine)
    return total, per_device
