"""Image labels keyed the way each vendor names its result files.

A label file line ``ILSVRC2012_val_00000001.JPEG 65`` is keyed by the file stem (``Path.stem``, cut at the
LAST dot). That is how the VACC tools name things (image2npz writes ``<stem>.npz``; Relay TXT paths keep
the image name). ais_bench names an output after its input file cut at the FIRST dot, and the Ascend
preprocess names that input after the image cut at the first dot too, so ``a.x.JPEG`` becomes ``a.bin``
and then ``a_0.txt``; the ModelZoo postprocess keys its label lines the same way. ``first_dot_keys``
gives that view, and refuses two label lines that collapse to one key: ais_bench would write both
images' outputs to the same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

from zoogate.errors import ZoogateError


class LabelMap(dict):
    """image key -> 0-based label, remembering where each key came from (for error messages)."""

    def __init__(self, entries: Iterable[tuple[str, int, str]] = (), source: str | os.PathLike | None = None,
                 classes: tuple[str, ...] = ()):
        """entries: (key, label, origin), origin e.g. "line 3 'a.x.JPEG'" or "n01440764/a.JPEG"; classes: the
        class folder names when the labels are their sorted positions."""
        super().__init__()
        self.origins: dict[str, str] = {}
        self.source = None if source is None else Path(source)
        self.classes = tuple(classes)
        for key, label, origin in entries:
            self[key] = label
            self.origins[key] = origin

    def origin(self, key: str) -> str:
        return self.origins.get(key, repr(key))


def first_dot(name: str) -> str:
    """ais_bench's key of a file name: the base name cut at its first dot (``a.x.JPEG`` -> ``a``)."""
    return os.path.basename(name.replace("\\", "/")).split(".")[0]


def first_dot_index(labels: Mapping[str, int]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(ais_bench key -> the label key it stands for, ais_bench key -> label keys that collapse onto it)."""
    keys: dict[str, str] = {}
    collisions: dict[str, list[str]] = {}
    for key in labels:
        short = first_dot(key)
        if short in keys and keys[short] != key:
            collisions.setdefault(short, [keys[short]]).append(key)
        else:
            keys.setdefault(short, key)
    for short in collisions:
        del keys[short]
    return keys, collisions


def first_dot_collision(labels: Mapping[str, int], colliding: list[str]) -> ZoogateError:
    """The error for label keys that ais_bench cannot tell apart, naming both lines."""
    origin = labels.origin if isinstance(labels, LabelMap) else repr
    source = labels.source if isinstance(labels, LabelMap) else None
    a, b = colliding[0], colliding[1]
    return ZoogateError(f"{origin(b)} and {origin(a)} both key as {first_dot(a)!r}: ais_bench names outputs by the "
                        "input name cut at its first dot, so their results would land in one file (rename one "
                        "image)", source)


def first_dot_keys(labels: Mapping[str, int]) -> dict[str, str]:
    """ais_bench key -> the label key it stands for; ZoogateError when two label keys collapse to one."""
    keys, collisions = first_dot_index(labels)
    if collisions:
        raise first_dot_collision(labels, next(iter(collisions.values())))
    return keys
