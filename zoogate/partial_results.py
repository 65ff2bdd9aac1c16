"""Partial results of a live run on disk: what an interrupted run saved, and whose build it was.

A state file (``<model>-<runner>-bs<N>-<identity digest>.npz``) holds each image's top-5 classes, which rows
were non-finite and a JSON meta block with the BuildIdentity (zoogate.identity) of the build that made them,
the dataset fingerprint and the batch size. It is written atomically (a temporary file, then os.replace),
read without pickle, and validated against what the caller expects: a hand-edited or inconsistent file is a
ZoogateError naming it, a file of another build a BuildMismatch naming what differs.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from zoogate.baselines import Preprocess
from zoogate.datasets import LabelledSet
from zoogate.errors import ZoogateError
from zoogate.identity import BuildIdentity, BuildMismatch, differences, of_runner
from zoogate.metrics import BACKGROUND_CLASSES, IMAGENET_CLASSES, TOPK

STATE_VERSION = 2                # 2: partial results carry the BuildIdentity of the build that made them


PARTIAL_FROM_ANOTHER_BUILD = "saved partial results are from another build"
RESUME_HINT = "; run without --resume to start this build over (the saved file is not used)"


def run_identity(runner, model: str, spec: Preprocess | None, dataset: LabelledSet) -> BuildIdentity:
    """The identity of `runner` scoring `dataset` through `spec` (None: a pipeline that is not the spec's)."""
    return of_runner(runner, model=model, preprocess=spec.describe() if spec is not None else None,
                     dataset=dataset.fingerprint())


def state_meta(identity: BuildIdentity, dataset: LabelledSet, batch_size: int) -> dict:
    return {"version": STATE_VERSION, "identity": identity.to_dict(), "model": identity.model,
            "runner": identity.runner, "batch_size": int(batch_size), "n": len(dataset)}


def state_file_for(folder, identity: BuildIdentity, batch_size: int) -> Path:
    """Where the partial results of exactly this build go: the identity's hash is in the name."""
    return Path(folder) / f"{identity.model}-{identity.runner}-bs{batch_size}-{identity.digest()}.npz"


STATE_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_state_meta(path) -> dict | None:
    """The meta block of a saved state file, None when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
    except STATE_UNREADABLE:
        return None
    return meta if isinstance(meta, dict) else None


def save_state(path: Path, meta: dict, top5: np.ndarray, nonfinite: np.ndarray, num_classes: int | None) -> None:
    """Write partial results next to `path`, then os.replace: an interruption never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    payload = dict(meta, done=int(len(top5)), num_classes=num_classes)
    with open(tmp, "wb") as fh:
        np.savez(fh, top5=np.asarray(top5, dtype=np.int16).reshape(-1, TOPK),
                 nonfinite=np.asarray(nonfinite, dtype=bool),
                 meta=np.frombuffer(json.dumps(payload, sort_keys=True).encode(), dtype=np.uint8))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


_HAND_EDITED = "; delete the file to start over"


def validate_state_meta(saved, path: Path) -> None:
    """The JSON of a partial-results file holds what save_state wrote: an object, counts as integers."""
    if not isinstance(saved, dict):
        raise ZoogateError(f"saved partial results: meta is a JSON {type(saved).__name__}, expected an object"
                           + _HAND_EDITED, path)
    for key in ("done", "batch_size", "n"):
        value = saved.get(key)
        if key in saved and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ZoogateError(f"saved partial results: meta {key} is {value!r}, expected a count" + _HAND_EDITED,
                               path)


def validate_state_arrays(top5: np.ndarray, nonfinite: np.ndarray, num_classes, path: Path) -> None:
    """Arrays as save_state writes them: (n, 5) integer class ids within [0, num_classes), (n,) booleans,
    num_classes 1000 or 1001 (None only before the first batch). A hand-edited file fails here, not as
    wrong numbers later."""
    if num_classes is not None and (isinstance(num_classes, bool) or num_classes not in (IMAGENET_CLASSES,
                                                                                           BACKGROUND_CLASSES)):
        raise ZoogateError(f"saved partial results: num_classes is {num_classes!r}, expected 1000 or 1001"
                           + _HAND_EDITED, path)
    if top5.dtype.kind not in "iu" or top5.ndim != 2 or top5.shape[1] != TOPK:
        raise ZoogateError(f"saved partial results: top5 is {top5.dtype} {top5.shape}, expected integer class ids "
                           f"of shape (n, {TOPK})" + _HAND_EDITED, path)
    if nonfinite.dtype != bool or nonfinite.shape != (top5.shape[0],):
        raise ZoogateError(f"saved partial results: nonfinite is {nonfinite.dtype} {nonfinite.shape}, expected "
                           f"bool ({top5.shape[0]},)" + _HAND_EDITED, path)
    if top5.size and num_classes is None:
        raise ZoogateError("saved partial results: rows were saved without a class count" + _HAND_EDITED, path)
    if top5.size and (top5.min() < 0 or top5.max() >= num_classes):
        raise ZoogateError(f"saved partial results: class ids {int(top5.min())}..{int(top5.max())} outside "
                           f"[0, {num_classes})" + _HAND_EDITED, path)


def load_state(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(top5, nonfinite, num_classes) saved for exactly this run; ZoogateError when it belongs to another."""
    try:
        with np.load(path, allow_pickle=False) as z:
            saved = json.loads(bytes(z["meta"]).decode())
            top5, nonfinite = z["top5"], z["nonfinite"]
    except STATE_UNREADABLE as exc:
        raise ZoogateError(f"saved partial results are unreadable ({exc}); delete the file to start over", path) \
            from None
    validate_state_meta(saved, path)
    validate_state_arrays(top5, nonfinite, saved.get("num_classes"), path)
    now = BuildIdentity.from_dict(meta.get("identity"))
    diffs = differences(BuildIdentity.from_dict(saved.get("identity")), now) if now is not None else \
        ["build identity: now unknown"]
    if diffs:
        raise BuildMismatch(PARTIAL_FROM_ANOTHER_BUILD, diffs, path, RESUME_HINT)
    differs = {k: (saved.get(k), v) for k, v in meta.items() if k != "identity" and saved.get(k) != v}
    if differs:
        what = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differs.items())
        raise ZoogateError(f"saved partial results belong to another run ({what}); run without --resume "
                           "(starts over) or delete the file", path)
    if len(top5) != saved.get("done") or len(nonfinite) != len(top5) or len(top5) > meta["n"]:
        raise ZoogateError("saved partial results are inconsistent (counts disagree); delete the file", path)
    return top5, nonfinite, saved.get("num_classes")
