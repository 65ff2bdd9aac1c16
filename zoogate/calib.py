"""Calibration sets for int8 builds: a class-balanced, seeded subset of a labelled set, written in the device
flow's input format, with a manifest.

The model zoos' advice is "any 1000 images of the 50,000 val set, make sure every class has data". So:
every class of the label space (0..num_classes-1) must have an image, else the set is refused naming the
class (``only_present`` limits the classes to those the set holds, for a generated set or a subset);
``per_class`` K takes K images of every class, ``count`` N a class-balanced N (counts differ by at most 1).
Formats: jpg (the original files, copied), bin / npy (float32 CHW through the model's reference
preprocessing), npz (uint8 CHW at the original size under ``input_0``, the VACC image2npz layout).
The manifest (``calib_manifest.json``) records the seed, the per-class counts, the preprocessing, the source
set's fingerprint and every file in order; ``fingerprint`` identifies the set for the build cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from zoogate.datasets import LabelledSet, balanced_indices
from zoogate.errors import ZoogateError

FORMATS = ("jpg", "bin", "npy", "npz")
MANIFEST = "calib_manifest.json"
CALIB_SEED = 20_240          # the subset's seed unless --seed


def _class_name(dataset: LabelledSet, label: int) -> str:
    return f"class {label} ({dataset.classes[label]})" if dataset.classes and label < len(dataset.classes) else \
        f"class {label}"


def choose(dataset: LabelledSet, *, per_class: int | None = None, count: int | None = None,
           seed: int = CALIB_SEED, only_present: bool = False) -> list[int]:
    """Indices of the calibration images, in the set's order."""
    if (per_class is None) == (count is None):
        raise ZoogateError("give exactly one of --per-class K and --count N")
    labels = dataset.labels
    have = Counter(labels.tolist())
    classes = sorted(have) if only_present else list(range(dataset.num_classes))
    missing = [c for c in classes if have.get(c, 0) == 0]
    if missing:
        shown = ", ".join(_class_name(dataset, c) for c in missing[:5])
        raise ZoogateError(f"{len(missing)} class(es) have no image: {shown}"
                           + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
                           + "; every class needs calibration data (or pass --only-present-classes)", dataset.root)
    if per_class is not None:
        if per_class < 1:
            raise ZoogateError(f"--per-class must be >= 1, got {per_class}")
        short = [c for c in classes if have[c] < per_class]
        if short:
            raise ZoogateError(f"{_class_name(dataset, short[0])} has {have[short[0]]} image(s), fewer than "
                               f"--per-class {per_class} ({len(short)} class(es) short)", dataset.root)
        count = per_class * len(classes)
    if count < len(classes):
        raise ZoogateError(f"--count {count} is fewer than the {len(classes)} classes: every class needs calibration "
                           "data", dataset.root)
    if count < 1 or count > len(labels):
        raise ZoogateError(f"--count {count}: the set has {len(labels)} images", dataset.root)
    return balanced_indices(labels, count, seed).tolist()


def write(dataset: LabelledSet, out: str | os.PathLike, indices: list[int], *, fmt: str = "jpg", spec=None,
          seed: int = CALIB_SEED) -> Path:
    """Write the chosen images to ``out`` (a new or empty folder) and the manifest; returns the manifest path."""
    if fmt not in FORMATS:
        raise ZoogateError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt in ("bin", "npy") and spec is None:
        raise ZoogateError(f"--format {fmt} writes preprocessed tensors: name the model with --model M")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ZoogateError("--out must be a new or empty folder (nothing a user gave is overwritten)", out)
    written: dict[str, str] = {}
    for i in indices:                  # refuse a name collision before anything is written
        item = dataset.items[i]
        name = _out_name(item.path, fmt)
        if name in written:
            raise ZoogateError(f"{item.name} and {written[name]} would both be written as {name}: rename one",
                               dataset.root)
        written[name] = item.name
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        for i in indices:
            item = dataset.items[i]
            files.append({"file": _write_one(item.path, out, fmt, spec), "source": item.name, "label": item.label})
    except BaseException:
        _remove_written(out, written, created)    # an unreadable image or an interrupt leaves no partial set
        raise
    counts = Counter(f["label"] for f in files)
    manifest = {"format": fmt, "seed": seed, "images": len(files), "source": str(dataset.root),
                "source_fingerprint": dataset.fingerprint(), "classes": len(counts),
                "per_class": {str(k): v for k, v in sorted(counts.items())},
                "preprocessing": spec.describe() if spec is not None and fmt in ("bin", "npy") else
                ("original files" if fmt == "jpg" else "uint8 CHW RGB at the original size (image2npz)"),
                "files": files}
    manifest["fingerprint"] = fingerprint(manifest)
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def _remove_written(out: Path, names, created: bool) -> None:
    for name in names:
        (out / name).unlink(missing_ok=True)
    if created:
        shutil.rmtree(out, ignore_errors=True)


def fingerprint(manifest: dict) -> str:
    """What identifies a calibration set for a build cache: its images, their order, format and preprocessing."""
    keyed = {k: manifest[k] for k in ("format", "preprocessing", "source_fingerprint", "files")}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:20]


def _out_name(src: Path, fmt: str) -> str:
    return src.name if fmt == "jpg" else f"{src.stem}.{fmt}"


def _write_one(src: Path, out: Path, fmt: str, spec) -> str:
    from zoogate.images import open_rgb

    stem = src.stem
    if fmt == "jpg":
        dest = out / src.name
        shutil.copyfile(src, dest)
        return dest.name
    img = open_rgb(src)
    if fmt == "npz":
        from zoogate.preprocess.writers import write_npz_image

        dest = out / f"{stem}.npz"
        write_npz_image(dest, np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1)))
        return dest.name
    from zoogate.preprocess.fast import FastPipeline
    from zoogate.preprocess.writers import write_tensor

    dest = out / f"{stem}.{fmt}"
    write_tensor(dest, FastPipeline(spec)(img), fmt)
    return dest.name
