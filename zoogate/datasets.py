"""Labelled image sets: the ImageNet validation folder as the documents lay it out, class-per-folder trees,
and generated sets written in the exact ImageNet layout.

ImageNet layout (seed 001 "准备数据集", seed 000 step.2)::

    imageNet/
        val/ILSVRC2012_val_00000001.JPEG ...
        val_label.txt          # "<file> <label>" per line, 0-based labels

``open_dataset`` accepts the top folder, or the image folder itself with val_label.txt inside it or beside
it. A class-per-folder tree (``train``-style: one folder per class) gets labels = sorted folder index.
Every inconsistency is a ZoogateError naming the file (and line) at fault.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from zoogate import synthetic
from zoogate.errors import ZoogateError
from zoogate.files import split_entries
from zoogate.images import IMAGE_SUFFIXES
from zoogate.labelmap import LabelMap

LABEL_FILE = "val_label.txt"
IMAGE_DIR = "val"
IMAGENET_VAL_SIZE = 50_000
NAME_PATTERN = "ILSVRC2012_val_{:08d}.JPEG"
SUBSET_SEED = 0
FINGERPRINT_CONTENT_BYTES = 64 << 20   # sets up to this size are fingerprinted by content, larger ones by stat
_SHOWN = 5          # how many offending names an error message lists


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int          # 0-based ImageNet label
    name: str           # name as the label file / folder tree gives it (relative to the image folder)

    @property
    def stem(self) -> str:
        return Path(self.name).stem


@dataclass(frozen=True)
class LabelledSet:
    root: Path
    layout: str                         # "imagenet-val" | "class-folders"
    items: tuple[LabelledImage, ...]
    label_file: Path | None = None
    num_classes: int = 1000
    classes: tuple[str, ...] = ()       # class folder names (class-folders layout)
    subset_of: int | None = None        # size of the full set when this is a --limit subset

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter((it.label for it in self.items), dtype=np.int64, count=len(self.items))

    @property
    def is_subset(self) -> bool:
        return self.subset_of is not None and self.subset_of > len(self.items)

    def describe(self) -> str:
        what = f"{len(self)} images ({self.layout}) in {self.root}"
        if self.is_subset:
            what += f", class-balanced subset of {self.subset_of}"
        return what

    def fingerprint(self) -> str:
        """Hash of each image's name, label and file content: which images, which labels, not where they lie.

        Content is each file's sha256 for sets up to FINGERPRINT_CONTENT_BYTES in all (memoised per file and
        modification), else its size and modification time: hashing all of ImageNet on every run is not cheap.
        """
        from zoogate.identity import file_digest

        try:
            stats = [it.path.stat() for it in self.items]
        except OSError as exc:
            raise ZoogateError(f"image file unreadable: {exc.strerror}", exc.filename) from None
        by_content = sum(st.st_size for st in stats) <= FINGERPRINT_CONTENT_BYTES
        h = hashlib.sha256(b"content\n" if by_content else b"stat\n")
        for it, st in zip(self.items, stats):
            what = file_digest(it.path) if by_content else f"{st.st_size}\t{st.st_mtime_ns}"
            h.update(f"{it.name}\t{it.label}\t{what}\n".encode())
        return h.hexdigest()[:16]

    def subset(self, limit: int | None, seed: int = SUBSET_SEED) -> "LabelledSet":
        """A class-balanced, deterministic subset of `limit` images (all of them when limit >= len)."""
        if limit is None or limit >= len(self.items):
            return self
        if limit < 1:
            raise ZoogateError(f"--limit must be >= 1, got {limit}")
        chosen = balanced_indices(self.labels, limit, seed)
        return replace(self, items=tuple(self.items[i] for i in chosen), subset_of=len(self.items))


def balanced_indices(labels: np.ndarray, limit: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """Indices of a class-balanced subset, in the set's own order.

    Round r takes the r-th image of every class that still has one (per-class order: a seeded
    shuffle); the last, partial round takes classes in a seeded order. Class counts differ by at most 1.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels.tolist()):
        by_class[lab].append(i)
    pools = {c: [idx[j] for j in rng.permutation(len(idx))] for c, idx in sorted(by_class.items())}
    chosen: list[int] = []
    rnd = 0
    while len(chosen) < limit:
        round_classes = [c for c in sorted(pools) if len(pools[c]) > rnd]
        need = limit - len(chosen)
        if len(round_classes) > need:
            round_classes = [round_classes[j] for j in sorted(rng.permutation(len(round_classes))[:need])]
        chosen.extend(pools[c][rnd] for c in round_classes)
        rnd += 1
    return np.sort(np.asarray(chosen, dtype=np.int64))


# ---------------------------------------------------------------- label files

@dataclass(frozen=True)
class LabelEntry:
    name: str
    label: int
    line: int


def read_label_file(path: str | os.PathLike, num_classes: int = 1000) -> dict[str, LabelEntry]:
    """Parse a val_label.txt: ``<file> <label>`` per line, 0-based. Keyed by file stem.

    Blank lines are ignored. Errors name the file and line: a line that does not parse, a label outside
    [0, num_classes), the same image twice (by name or by stem).
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ZoogateError("label file not found", path) from None
    except IsADirectoryError:
        raise ZoogateError("is a directory, expected a label file (val_label.txt)", path) from None
    except OSError as exc:
        raise ZoogateError(f"cannot read label file: {exc.strerror}", path) from None
    try:
        lines = text.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ZoogateError(f"not a text file (byte {exc.start} is not UTF-8)", path) from None
    entries: dict[str, LabelEntry] = {}
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ZoogateError(f"line {lineno}: expected '<file> <label>', got {raw!r}", path)
        name, label_text = parts
        try:
            label = int(label_text)
        except ValueError:
            raise ZoogateError(f"line {lineno}: label {label_text!r} is not an integer", path) from None
        if not 0 <= label < num_classes:
            raise ZoogateError(f"line {lineno}: label {label} out of range 0..{num_classes - 1} "
                               "(labels are 0-based ImageNet class indices)", path)
        stem = Path(name).stem
        if stem in entries:
            first = entries[stem]
            raise ZoogateError(f"line {lineno}: duplicate entry {name!r} (already on line {first.line} "
                               f"as {first.name!r})", path)
        entries[stem] = LabelEntry(name, label, lineno)
    if not entries:
        raise ZoogateError("label file has no '<file> <label>' lines", path)
    return entries


def write_label_file(path: str | os.PathLike, items: Iterable[tuple[str, int]]) -> Path:
    """Write ``<file> <label>`` lines (one space, as the ModelZoo postprocess splits them)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for name, label in items:
            fh.write(f"{name} {int(label)}\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- folders

def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def _scan(folder: Path) -> tuple[list[str], list[str]]:
    """(image file names, subfolder names) of one folder, sorted."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except PermissionError:
        raise ZoogateError("permission denied", folder) from None
    except OSError as exc:
        raise ZoogateError(f"cannot list folder: {exc.strerror}", folder) from None
    files, dirs = split_entries(entries)
    images = [name for name in files if _is_image(name)]
    return sorted(images), sorted(dirs)


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def _pair_labels(image_dir: Path, image_names: list[str], label_file: Path, num_classes: int) -> list[LabelledImage]:
    entries = read_label_file(label_file, num_classes)
    by_stem: dict[str, str] = {}
    for name in image_names:
        stem = Path(name).stem
        if stem in by_stem:
            raise ZoogateError(f"two images with the same name stem: {by_stem[stem]!r} and {name!r}", image_dir)
        by_stem[stem] = name
    missing = [e for stem, e in entries.items() if stem not in by_stem]
    if missing:
        first = missing[0]
        raise ZoogateError(f"line {first.line}: names {first.name!r}, which is not in {image_dir} "
                           f"({len(missing)} labelled image(s) missing: {_listing([m.name for m in missing])})",
                           label_file)
    unlabelled = [n for n in image_names if Path(n).stem not in entries]
    if unlabelled:
        raise ZoogateError(f"{len(unlabelled)} image(s) have no line in {label_file}: {_listing(unlabelled)}",
                           image_dir)
    return [LabelledImage(image_dir / by_stem[stem], e.label, by_stem[stem])
            for stem, e in sorted(entries.items(), key=lambda kv: by_stem[kv[0]])]


def _class_folders(root: Path, classes: list[str], num_classes: int) -> LabelledSet:
    if len(classes) > num_classes:
        raise ZoogateError(f"{len(classes)} class folders: labels (sorted folder index) would run past "
                           f"{num_classes - 1}", root)
    items: list[LabelledImage] = []
    for label, cls in enumerate(classes):
        images, _ = _scan(root / cls)
        items.extend(LabelledImage(root / cls / name, label, f"{cls}/{name}") for name in images)
    if not items:
        raise ZoogateError("class folders hold no images", root)
    stems: dict[str, str] = {}
    for it in items:
        if it.stem in stems:
            raise ZoogateError(f"duplicate image name stem {it.stem!r}: {stems[it.stem]} and {it.name}", root)
        stems[it.stem] = it.name
    return LabelledSet(root=root, layout="class-folders", items=tuple(items), num_classes=num_classes,
                       classes=tuple(classes))


def open_dataset(path: str | os.PathLike, *, labels: str | os.PathLike | None = None, limit: int | None = None,
                 num_classes: int = 1000) -> LabelledSet:
    """Open an ImageNet val folder or a class-per-folder tree; `limit` takes a class-balanced subset.

    Accepted: DIR with val/ and val_label.txt; DIR = the image folder with val_label.txt inside or beside
    it; DIR (or DIR/val) holding one folder per class. `labels` overrides where the label file is.
    """
    root = Path(path)
    if not root.exists():
        raise ZoogateError("dataset folder not found (pass --imagenet DIR: val/ + val_label.txt, "
                           "or one folder per class)", root)
    if not root.is_dir():
        raise ZoogateError("not a folder (pass the ImageNet folder holding val/ and val_label.txt)", root)
    image_dir = root
    images, dirs = _scan(root)
    if not images and IMAGE_DIR in dirs:
        image_dir = root / IMAGE_DIR
        images, dirs = _scan(image_dir)
    if labels is not None:
        label_file = Path(labels)
    else:
        candidates = [image_dir / LABEL_FILE, image_dir.parent / LABEL_FILE, root / LABEL_FILE]
        label_file = next((c for c in candidates if c.is_file()), None)
    if images:
        if label_file is None:
            raise ZoogateError(f"{len(images)} images but no {LABEL_FILE} in it or beside it "
                               "(or pass the label file explicitly)", image_dir)
        items = _pair_labels(image_dir, images, label_file, num_classes)
        ds = LabelledSet(root=image_dir, layout="imagenet-val", items=tuple(items), label_file=label_file,
                         num_classes=num_classes)
    elif dirs:
        if labels is not None:
            raise ZoogateError("a label file was given, but the folder holds class folders, not images", image_dir)
        ds = _class_folders(image_dir, dirs, num_classes)
    else:
        raise ZoogateError("no images and no class folders in it", image_dir)
    return ds.subset(limit)


def labels_by_stem(path: str | os.PathLike, num_classes: int = 1000) -> tuple[LabelMap, Path]:
    """Labels for offline scoring: a val_label.txt, or a dataset folder (labels of its images).

    Keyed by file stem; each key remembers its line or file, so that ``labelmap.first_dot_keys`` (the
    ais_bench view) can name both lines of a collision."""
    p = Path(path)
    if p.is_dir():
        ds = open_dataset(p, num_classes=num_classes)
        source = ds.label_file or ds.root
        if ds.label_file is not None:
            entries = read_label_file(ds.label_file, num_classes)
            origin = {stem: f"line {e.line} {e.name!r}" for stem, e in entries.items()}
            return LabelMap(((it.stem, it.label, origin.get(it.stem, it.name)) for it in ds.items), source), source
        return LabelMap(((it.stem, it.label, it.name) for it in ds.items), source, classes=ds.classes), source
    entries = read_label_file(p, num_classes)
    return LabelMap(((stem, e.label, f"line {e.line} {e.name!r}") for stem, e in entries.items()), p), p


# ---------------------------------------------------------------- writing a generated set

def encode_jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def generated_jpegs(n: int, seed: int = 0) -> list[bytes]:
    """n zoogate.synthetic images as JPEG bytes (what a generated set's files will hold)."""
    return [encode_jpeg(im) for im in synthetic.images(n, seed=seed)]


def write_imagenet_layout(root: str | os.PathLike, images: Sequence[bytes | Image.Image], labels: Sequence[int],
                          num_classes: int = 1000) -> LabelledSet:
    """Write images as root/val/ILSVRC2012_val_%08d.JPEG plus root/val_label.txt, then open it back."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    root = Path(root)
    val = root / IMAGE_DIR
    val.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images, start=1):
        name = NAME_PATTERN.format(i)
        data = img if isinstance(img, bytes) else encode_jpeg(img)
        (val / name).write_bytes(data)
        names.append(name)
    write_label_file(root / LABEL_FILE, zip(names, labels))
    return open_dataset(root, num_classes=num_classes)
