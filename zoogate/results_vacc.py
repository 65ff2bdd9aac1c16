"""VACC results: the Relay top-k TXT that the model zoo's classification sample and npz decoder write.

Format: 5 lines per image, k = 0..4::

    <image path>: Relay top-<k> id: <class index>, prob: <P>, class name: <name>

The sample opens the file in append mode, so a rerun appends a second block for the same image: identical
blocks are counted once (and said so), differing ones are an error naming both lines.

Scoring is by class INDEX (the id field). The ground truth is --labels (keyed by file stem: a
val_label.txt or a class-folder dataset), else the image's parent folder (its synset) mapped to the
class index by sorted synset order (timm's packaged ImageNet synsets). ``--class-list`` (the model zoo's
imagenet.txt: one name per line, 0-based line = index) checks every printed name against its id.

The model zoo's eval_topk compares class NAME strings instead: the ground truth is the full ImageNet name
of the parent synset (its imagenet_info, equal to timm's synset descriptions) and the prediction is the
printed name. So two classes that share a name (``crane``, 134 and 517) count for each other, and a class
whose printed name is not its full name (480 is truncated in the model zoo's imagenet.txt) never counts.
Both numbers are reported, with the images where they differ and why.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from zoogate.errors import ZoogateError
from zoogate.files import read_text
from zoogate.metrics import IMAGENET_CLASSES, TOPK, TopkCounter
from zoogate.vendor_writers import RELAY_TOPK

_LINE = re.compile(r"^(?P<path>.*): Relay top-(?P<k>\d+) id: (?P<id>-?\d+), prob: (?P<prob>[^,]*), "
                   r"class name: (?P<name>.*)$")
_SYNSET = re.compile(r"^n\d{8}$")
_SHOWN = 5


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


# ---------------------------------------------------------------- ImageNet names (timm's packaged info)

def imagenet_info() -> tuple[list[str], dict[str, str]]:
    """(the 1000 synsets in sorted order, synset -> full class name), from timm's packaged info, kept in the
    cache folder per timm version (``import timm`` costs about 2 s)."""
    from importlib.metadata import PackageNotFoundError, version

    from zoogate import cache

    try:
        timm_version = version("timm")
    except PackageNotFoundError:      # pragma: no cover - timm is a dependency
        raise ZoogateError("needs timm's ImageNet info (timm >= 0.9) to map synsets to classes: "
                           "install timm, or pass --labels") from None
    synsets, full = cache.cached_json("timm", {"timm": timm_version, "info": "ImageNetInfo"}, _timm_imagenet_info,
                                      label="imagenet-info")
    return list(synsets), dict(full)


def _timm_imagenet_info() -> tuple[list[str], dict[str, str]]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    synsets = list(info.label_names())
    return synsets, {s: info.label_name_to_description(s) for s in synsets}


def read_class_list(path: str | os.PathLike) -> list[str]:
    """A model zoo class list (imagenet.txt): one class name per line, 0-based line = class index."""
    path = Path(path)
    text = read_text(path, "class list (imagenet.txt)")
    names = [line.strip() for line in text.splitlines()]
    if len(names) != IMAGENET_CLASSES:
        raise ZoogateError(f"{len(names)} class names: expected {IMAGENET_CLASSES}, one per line "
                           "(line i+1 = class index i)", path)
    blank = [i for i, n in enumerate(names) if not n]
    if blank:
        raise ZoogateError(f"line {blank[0] + 1}: empty class name", path)
    return names


def class_list_notes(names: Sequence[str], full: Mapping[str, str], synsets: Sequence[str]) -> list[str]:
    """What makes name matching differ from index matching with this class list."""
    notes = []
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    for n, idx in seen.items():
        if len(idx) > 1:
            notes.append(f"class list: {n!r} names classes {' and '.join(map(str, idx))}: matching by name cannot tell "
                         "them apart")
    for i, n in enumerate(names):
        if i < len(synsets) and n != full[synsets[i]]:
            notes.append(f"class list: index {i} ({synsets[i]}) is {n!r}, not the full ImageNet name "
                         f"{full[synsets[i]]!r}: matching by name never counts that class")
    return notes


# ---------------------------------------------------------------- reading the TXT

@dataclass
class RelayBlock:
    """The 5 lines of one image."""

    path: str
    line: int                         # 1-based line of its top-0 line
    ids: tuple[int, ...]
    names: tuple[str, ...]
    copies: int = 1                   # identical blocks of this image in the file (reruns in append mode)

    @property
    def stem(self) -> str:
        return Path(self.path.replace("\\", "/")).stem

    @property
    def parent(self) -> str:
        return Path(self.path.replace("\\", "/")).parent.name


def is_relay_file(path: str | os.PathLike, fmt: str = "auto") -> bool:
    """A --results FILE in the Relay top-k TXT form (by --format relay, or a .txt file)."""
    p = Path(path)
    return p.is_file() and (fmt == "relay" or (fmt == "auto" and p.suffix.lower() == ".txt"))


def _parse_line(line: str, lineno: int, path: Path, num_classes: int) -> tuple[str, int, int, str]:
    m = _LINE.match(line)
    if m is None:
        raise ZoogateError(f"line {lineno}: not a Relay top-k line ('<path>: Relay top-<k> id: <N>, prob: <P>, "
                           f"class name: <name>'): {line[:80]!r} (a single ais_bench TXT? pass its folder)", path)
    class_id = int(m["id"])
    if not 0 <= class_id < num_classes:
        raise ZoogateError(f"line {lineno}: class id {class_id} out of range 0..{num_classes - 1}", path)
    try:
        prob = float(m["prob"])
    except ValueError:
        raise ZoogateError(f"line {lineno}: prob {m['prob'][:20]!r} is not a number", path) from None
    if math.isnan(prob):
        raise ZoogateError(f"line {lineno}: prob is NaN", path)
    return m["path"], int(m["k"]), class_id, m["name"].strip()


def read_relay(path: str | os.PathLike, num_classes: int = IMAGENET_CLASSES) -> tuple[list[RelayBlock], list[str]]:
    """(one block per image in file order, notes). Errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ZoogateError("Relay top-k TXT not found", path) from None
    except OSError as exc:
        raise ZoogateError(f"cannot read Relay top-k TXT: {exc.strerror}", path) from None
    except UnicodeDecodeError as exc:
        raise ZoogateError(f"not a text file (byte {exc.start} is not UTF-8)", path) from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ZoogateError("Relay top-k TXT is empty", path)
    rows = [_parse_line(line.rstrip("\r"), i, path, num_classes) for i, line in enumerate(lines, start=1)]
    if len(rows) % RELAY_TOPK:
        last = len(rows) - len(rows) % RELAY_TOPK + 1
        raise ZoogateError(f"{len(rows)} lines is not {RELAY_TOPK} per image: the block from line {last} is cut "
                           "short (an interrupted run?)", path)
    blocks: dict[str, RelayBlock] = {}
    for start in range(0, len(rows), RELAY_TOPK):
        parsed = []
        for j in range(RELAY_TOPK):
            lineno = start + j + 1
            image, k, class_id, name = rows[start + j]
            if k != j:
                raise ZoogateError(f"line {lineno}: top-{k} where top-{j} belongs ({RELAY_TOPK} lines per image, "
                                   "top-0 first)", path)
            if parsed and image != parsed[0][0]:
                raise ZoogateError(f"line {lineno}: names {image!r} inside the block of {parsed[0][0]!r} "
                                   f"(line {start + 1})", path)
            parsed.append((image, class_id, name))
        ids = tuple(p[1] for p in parsed)
        if len(set(ids)) != len(ids):
            raise ZoogateError(f"line {start + 1}: the same class id twice in the top-{RELAY_TOPK} of {parsed[0][0]!r}",
                               path)
        block = RelayBlock(parsed[0][0], start + 1, ids, tuple(p[2] for p in parsed))
        if block.stem in blocks:
            first = blocks[block.stem]
            if first.path != block.path:
                raise ZoogateError(f"line {block.line}: {block.path!r} and line {first.line}: {first.path!r} share the "
                                   f"image name {block.stem!r}", path)
            if (first.ids, first.names) != (block.ids, block.names):
                raise ZoogateError(f"line {block.line}: a second block for {block.path!r} (first at line {first.line}) "
                                   "with other classes: the file holds two runs (the sample appends); score one",
                                   path)
            first.copies += 1
            continue
        blocks[block.stem] = block
    unique = list(blocks.values())
    notes = []
    repeated = [b for b in unique if b.copies > 1]
    if repeated:
        extra = sum(b.copies - 1 for b in repeated)
        notes.append(f"{len(repeated)} image(s) have repeated identical blocks ({extra} extra, e.g. "
                     f"{repeated[0].path!r} from line {repeated[0].line}): the file was appended to by a rerun; each "
                     "image counted once (eval_topk counts every block)")
    return unique, notes


# ---------------------------------------------------------------- scoring

@dataclass
class NameScore:
    """eval_topk's numbers: class-name strings, every block counted (duplicates too)."""

    available: bool
    why_not: str = ""
    blocks: int = 0
    top1_hits: int = 0
    top5_hits: int = 0
    differences: list[str] = field(default_factory=list)

    def rate(self, k: int) -> float:
        hits = self.top1_hits if k == 1 else self.top5_hits
        return hits / self.blocks * 100 if self.blocks else 0.0

    def printed(self, k: int) -> float:
        """As eval_topk prints it: np.around(rate, 3)."""
        return float(np.around(self.rate(k), 3))

    def to_dict(self) -> dict:
        if not self.available:
            return {"available": False, "why_not": self.why_not}
        return {"available": True, "blocks": self.blocks, "top1_hits": self.top1_hits, "top5_hits": self.top5_hits,
                "top1_rate": self.printed(1), "top5_rate": self.printed(5), "differences": list(self.differences)}


def _ground_truth(blocks: list[RelayBlock], labels: Mapping[str, int] | None, synsets: list[str], path: Path,
                  allow_subset: bool) -> np.ndarray:
    if labels is None:
        index = {s: i for i, s in enumerate(synsets)}
        bad = [b for b in blocks if b.parent not in index]
        if bad:
            raise ZoogateError(f"line {bad[0].line}: parent folder {bad[0].parent!r} of {bad[0].path!r} is not an "
                               f"ImageNet synset ({len(bad)} such images): pass --labels", path)
        return np.array([index[b.parent] for b in blocks], dtype=np.int64)
    unlabelled = [b for b in blocks if b.stem not in labels]
    if unlabelled:
        raise ZoogateError(f"line {unlabelled[0].line}: image {unlabelled[0].stem!r} has no label ({len(unlabelled)} "
                           f"unlabelled: {_listing([b.stem for b in unlabelled])}); wrong label file?", path)
    have = {b.stem for b in blocks}
    missing = [s for s in labels if s not in have]
    if missing and not allow_subset:
        raise ZoogateError(f"no Relay block for labelled image {missing[0]!r} ({len(missing)} of {len(labels)} "
                           f"labelled images have none: {_listing(missing)}); score a partial run on purpose with "
                           "--allow-subset", path)
    return np.array([labels[b.stem] for b in blocks], dtype=np.int64)


def _check_class_folders(labels: Mapping[str, int] | None, synsets: list[str], labels_source: str) -> None:
    classes = getattr(labels, "classes", ())
    if classes and len(classes) < len(synsets) and set(classes) <= set(synsets):
        raise ZoogateError(f"the class folders are {len(classes)} of the {len(synsets)} ImageNet synsets: their sorted "
                           "position is not the class index the model prints; add the missing synset folders (empty "
                           "ones do), or leave --labels out to map each parent synset through the full ImageNet list",
                           getattr(labels, "source", None) or labels_source or None)


def _check_names(blocks: list[RelayBlock], class_names: list[str], path: Path, class_list) -> None:
    for b in blocks:
        for k, (i, n) in enumerate(zip(b.ids, b.names)):
            if n != class_names[i]:
                raise ZoogateError(f"line {b.line + k}: class {i} is printed as {n!r}, but {class_list} line {i + 1} "
                                   f"names it {class_names[i]!r}: the file was written with another class list", path)


def score_by_name(blocks: list[RelayBlock], gt: np.ndarray, synsets: Sequence[str],
                  full: Mapping[str, str]) -> NameScore:
    """eval_topk's count, and why it differs from the by-index count, image by image."""
    bad = [b for b in blocks if b.parent not in full]
    if bad:
        return NameScore(False, f"eval_topk takes the ground truth from each path's parent folder (a synset); "
                                f"{bad[0].path!r} has {bad[0].parent!r}: it would stop with a KeyError")
    index = {s: i for i, s in enumerate(synsets)}
    score = NameScore(True)
    why: dict[tuple[int, str], list[tuple[RelayBlock, str]]] = {}
    for b, label in zip(blocks, gt.tolist()):
        target = full[b.parent]
        by_name = [n == target for n in b.names]
        by_index = [i == label for i in b.ids]
        score.blocks += b.copies
        score.top1_hits += b.copies * by_name[0]
        score.top5_hits += b.copies * any(by_name)
        for k in (1, 5):
            name_hit, index_hit = any(by_name[:k]), any(by_index[:k])
            if name_hit == index_hit:
                continue
            if index[b.parent] != label:
                reason, detail = "label", f"{b.parent} is class {index[b.parent]}, the label says {label}"
            elif index_hit:
                reason, detail = "name", f"class {label} printed {b.names[b.ids.index(label)]!r}"
            else:
                j = by_name.index(True)
                reason, detail = "shared", f"{target!r}: predicted {b.ids[j]}, truth {label}"
            why.setdefault((k, reason), []).append((b, detail))
    text = {"label": "counted by one rule only because the label disagrees with the parent folder",
            "name": "counted by index but not by name: the printed name of their class is not its full ImageNet "
                    "name, which eval_topk compares with",
            "shared": "counted by name but not by index: a class with the same name was predicted"}
    for (k, reason), hits in sorted(why.items()):
        details = sorted({d for _, d in hits})
        score.differences.append(f"top-{k}: {len(hits)} image(s) {text[reason]} ({_listing(details)}), e.g. "
                                 f"{hits[0][0].path!r}")
    repeated = sum(b.copies - 1 for b in blocks)
    if repeated:
        score.differences.append(f"eval_topk counts {score.blocks} blocks for {len(blocks)} images ({repeated} "
                                 "repeated blocks of reruns)")
    if any(":" in b.path for b in blocks):
        score.differences.append("some paths hold ':': eval_topk splits lines at ':' and would misread them")
    return score


def score_relay(path: str | os.PathLike, labels: Mapping[str, int] | None, *, class_list=None,
                allow_subset: bool = False, labels_source: str = ""):
    """Score a Relay top-k TXT by class index; ScoredRun.by_name holds eval_topk's numbers."""
    from zoogate.results import ResultSet, ScoredRun

    path = Path(path)
    synsets, full = imagenet_info()
    class_names = read_class_list(class_list) if class_list is not None else None
    blocks, notes = read_relay(path)
    if labels is not None:
        _check_class_folders(labels, synsets, labels_source)
    gt = _ground_truth(blocks, labels, synsets, path, allow_subset)
    if class_names is not None:
        _check_names(blocks, class_names, path, class_list)
        notes += [f"class names checked against {class_list}"] + class_list_notes(class_names, full, synsets)
    else:
        notes.append("class names not checked: pass --class-list FILE (the model zoo's imagenet.txt) to check them")
    if labels is None:
        labels_source = "each image's parent folder (synset), in sorted synset order (timm's ImageNet synsets)"
    counter = TopkCounter(IMAGENET_CLASSES)
    counter.add_topk(np.array([b.ids for b in blocks], dtype=np.int64).reshape(-1, TOPK), gt)
    found = ResultSet(source=path, fmt="txt", kind="vacc relay", stems=[b.stem for b in blocks], files=[path] * len(blocks),
                      pairing="by image path (Relay top-k lines)", notes=notes)
    return ScoredRun(counter.summary(), found, labels_source, by_name=score_by_name(blocks, gt, synsets, full))
