"""Build identity: which build a measurement was made on, so nothing measured on one build is reused for another.

A ``BuildIdentity`` names the model, the weights, the artifact that actually ran (a sha256 of the ONNX / OM
file, of every file of a VACC build, or the weights for the torch runner), the runner with its options and
precision, the preprocessing and the dataset. Everything saved for reuse (partial results, fp32 reference
runs, golden sets, host fps baselines) carries the identity of the build that made it, and is reused only
when ``differences(saved, now)`` is empty. A field that is not known (None) never matches anything: a
runner that cannot say what it loaded can never reuse a saved result. A field that does not apply to a
kind of saved state (the dataset of an fps baseline) is ``NOT_APPLICABLE`` on both sides.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

from zoogate.errors import ZoogateError

NOT_APPLICABLE = "-"
IN_ARTIFACT = "inside the artifact"      # weights of an ONNX / OM / VACC file: its digest covers them
FIELDS = ("model", "artifact", "weights", "runner", "options", "precision", "preprocess", "dataset")
_SHOWN_HEX = 12


@dataclass(frozen=True)
class BuildIdentity:
    model: str | None
    artifact: str | None                     # "sha256:<hex>" of what ran; the weights identity for the torch runner
    weights: str | None                      # "sha256:<hex>" of a checkpoint, "calibrated, seed N, ...", IN_ARTIFACT
    runner: str | None
    options: tuple[tuple[str, Any], ...] = ()    # runner options that change the build, sorted
    precision: str | None = None
    preprocess: str | None = NOT_APPLICABLE  # Preprocess.describe()
    dataset: str | None = NOT_APPLICABLE     # LabelledSet.fingerprint()
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)   # field -> file, for messages only

    def __post_init__(self) -> None:
        for name in ("options", "sources"):
            value = getattr(self, name)
            items = value.items() if isinstance(value, dict) else value
            object.__setattr__(self, name, tuple(sorted((str(k), v) for k, v in items)))

    # -- comparing -------------------------------------------------------------------------------
    @property
    def reusable(self) -> bool:
        """True when every field is known: only then can saved state ever match this build."""
        return all(getattr(self, f) is not None for f in FIELDS)

    def compared(self) -> dict:
        return {f: (dict(self.options) if f == "options" else getattr(self, f)) for f in FIELDS}

    def digest(self) -> str:
        """A short hash of the compared fields (file names of saved state)."""
        blob = json.dumps(self.compared(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **changes) -> "BuildIdentity":
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(changes)
        return BuildIdentity(**data)

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {**self.compared(), "sources": dict(self.sources)}

    @classmethod
    def from_dict(cls, data: Any) -> "BuildIdentity | None":
        """The identity saved as ``to_dict()``; None for anything else (saved before identities, or damaged)."""
        if not isinstance(data, dict) or not all(f in data for f in FIELDS):
            return None
        options, sources = data.get("options") or {}, data.get("sources") or {}
        if not isinstance(options, dict) or not isinstance(sources, dict):
            return None
        values = {f: data[f] for f in FIELDS if f != "options"}
        if not all(v is None or isinstance(v, str) for v in values.values()):
            return None
        return cls(options=options, sources={str(k): str(v) for k, v in sources.items()}, **values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> "BuildIdentity | None":
        try:
            return cls.from_dict(json.loads(text))
        except (TypeError, ValueError):
            return None

    # -- text ------------------------------------------------------------------------------------
    def describe(self) -> str:
        parts = [f"{f} {show(f, getattr(self, f))}" for f in FIELDS if getattr(self, f) != NOT_APPLICABLE]
        return "; ".join(parts)


def show(name: str, value: Any) -> str:
    """A field's value as a message shows it: digests shortened, None as 'unknown'."""
    if value is None:
        return "unknown"
    if name == "options":
        items = value.items() if isinstance(value, dict) else value
        return ",".join(f"{k}={v}" for k, v in items) or "none"
    text = str(value)
    if text.startswith("sha256:") and len(text) > len("sha256:") + _SHOWN_HEX:
        head, _, rest = text.partition(" ")
        return head[:len("sha256:") + _SHOWN_HEX] + ".." + (f" {rest}" if rest else "")
    return text


def differences(saved: BuildIdentity | None, now: BuildIdentity, fields_: Sequence[str] = FIELDS) -> list[str]:
    """One 'field: saved X, now Y' entry per field that differs; an unknown field always differs."""
    if saved is None:
        return ["build identity: saved none recorded (written before build identities, or damaged), "
                f"now {now.describe()}"]
    out = []
    for name in fields_:
        a, b = getattr(saved, name), getattr(now, name)
        if a is None or b is None or (dict(a) != dict(b) if name == "options" else a != b):
            out.append(f"{name}: saved {show(name, a)}, now {show(name, b)}")
    return out


def describe_differences(diffs: Iterable[str]) -> str:
    return "; ".join(diffs)


class BuildMismatch(ZoogateError):
    """Saved state of another build was offered for reuse: refused in one line naming each field that differs,
    e.g. "saved partial results are from another build: artifact: saved sha256:ab12.., now sha256:cd34.."."""

    def __init__(self, lead: str, diffs: Sequence[str], path=None, hint: str = "") -> None:
        self.differences = list(diffs)
        super().__init__(f"{lead}: {describe_differences(diffs)}{hint}", path)


# ---------------------------------------------------------------- digests of what ran

_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digest(path: str | os.PathLike) -> str:
    """'sha256:<hex>' of a file; computed once per (path, size, mtime_ns) in this process."""
    from zoogate.cache import sha256_file

    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is None:
        known = "sha256:" + sha256_file(real)
        with _DIGESTS_LOCK:
            _DIGESTS[key] = known
    return known


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """'sha256:<hex>' over several files (name and content digest of each, in name order)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(f"{p.name}\t{file_digest(p)}\n".encode())
    return "sha256:" + h.hexdigest()


def state_dict_digest(module) -> str:
    """'sha256:<hex>' of a torch module's parameters and buffers (names, dtypes, shapes, values)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- identity of a loaded runner

def of_runner(runner, *, model: str, preprocess: str | None = NOT_APPLICABLE,
              dataset: str | None = NOT_APPLICABLE) -> BuildIdentity:
    """The identity of what a loaded Runner runs (its ``artifact_id``, weights, options, precision)."""
    artifact = getattr(runner, "artifact_id", None)
    weights = getattr(runner, "weights_identity", None) or (IN_ARTIFACT if artifact else None)
    options = getattr(runner, "build_options", {}) or {}
    sources = {}
    where = getattr(runner, "artifact_path", None)
    if where:
        sources["artifact"] = str(where)
    return BuildIdentity(model=model or None, weights=weights, artifact=artifact,
                         runner=getattr(runner, "name", None) or type(runner).__name__, options=options,
                         precision=getattr(runner, "precision", None), preprocess=preprocess, dataset=dataset,
                         sources=sources)
