"""Baselines: the documented numbers, their provenance, and every tolerance, read from baselines/*.toml.

Loading validates a schema; any malformed or incomplete file raises ZoogateError naming the file
and the key (e.g. ``baselines/inception_v4.toml: models.inception_v4.top1: expected a number, got 'abc'``).
"""

from __future__ import annotations

import functools
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoogate import sources
from zoogate.errors import ZoogateError

BASELINE_DIR = Path(os.environ.get("ZOOGATE_BASELINES", Path(__file__).resolve().parent.parent / "baselines"))
TOLERANCE_GLOB = "tolerances*.toml"   # every tolerance file; names must be unique across them

_NUMBER = (int, float)
# model key -> (type(s), required)
_MODEL_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "builder": ((str,), True),
    "implementation": ((str,), True),
    "documented_implementation": ((bool,), True),
    "preprocess": ((str,), True),
    "num_classes": ((int,), True),
    "input_size": ((int,), True),
    "dataset": ((str,), True),
    "source": ((str,), True),
    "top1": (_NUMBER, False),
    "top5": (_NUMBER, False),
    "gflops": (_NUMBER, False),
    "params_m": (_NUMBER, False),
    "background_class": ((bool,), False),
    "reference_row": ((str,), False),
    "rows": ((list,), False),
}
_PREPROCESS_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "resize": ((int,), True),
    "crop": ((int,), True),
    "interpolation": ((str,), True),
    "mean": ((list,), True),
    "std": ((list,), True),
    "channel_order": ((str,), True),
    "layout": ((str,), True),
    "source": ((str,), True),
    "inferred": ((bool,), False),
}
_ROW_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "hardware": ((str,), True),
    "framework": ((str,), True),
    "source": ((str,), True),
    "runner": ((str,), False),
    "top1": (_NUMBER, False),
    "top5": (_NUMBER, False),
    "num_classes": ((int,), False),
    "fps": ((dict,), False),
    "train_fps": ((dict,), False),
    "informational": ((bool,), False),
    "preprocess_variant": ((str,), False),
}
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
VARIANT_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_OPEN_UNIT_INTERVAL = {"wilson_confidence": "a confidence level"}     # tolerances that are probabilities


@dataclass(frozen=True)
class Preprocess:
    """A documented torchvision-style eval pipeline."""

    name: str
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str
    layout: str
    source: str
    inferred: bool = False

    def describe(self) -> str:
        return (f"Resize({self.resize}, {self.interpolation}) -> CenterCrop({self.crop}) -> ToTensor -> "
                f"Normalize(mean={list(self.mean)}, std={list(self.std)}) [{self.channel_order}, {self.layout}]")


@dataclass(frozen=True)
class HardwareRow:
    id: str
    hardware: str
    framework: str
    source: str
    runner: str | None = None
    top1: float | None = None
    top5: float | None = None
    num_classes: int | None = None
    fps: dict[int, float] = field(default_factory=dict)
    train_fps: dict[int, float] = field(default_factory=dict)
    informational: bool = False
    # the preprocessing that produced the row's numbers (a zoogate.preprocess variant name, e.g. the card's
    # own path for a device row); None: the model's documented pipeline
    preprocess_variant: str | None = None


@dataclass(frozen=True)
class ModelBaseline:
    name: str
    family: str
    file: str
    builder: str
    implementation: str
    documented_implementation: bool
    preprocess: Preprocess
    num_classes: int
    input_size: int
    dataset: str
    source: str
    top1: float | None = None
    top5: float | None = None
    gflops: float | None = None
    params_m: float | None = None
    background_class: bool = False
    reference_row: str | None = None
    rows: tuple[HardwareRow, ...] = ()

    @property
    def user_supplied(self) -> bool:
        """PaddleClas / MindSpore models: only a user's ONNX file can stand for them."""
        return self.builder == "onnx"

    def documented_regression(self, r: HardwareRow) -> str | None:
        """Why a documented device row is a documented regression: its top-1 below reference_agreement_top1
        (MLPerf's 99 %) of the model's reference row. None when it is not, or nothing can be compared."""
        ref = self.row(None)
        if r.id == ref.id or r.informational or r.top1 is None or not ref.top1:
            return None
        floor = tolerance("reference_agreement_top1").value
        ratio = r.top1 / ref.top1
        if ratio >= floor:
            return None
        return (f"row {r.id} documents top-1 {r.top1:g}, {ratio:.1%} of the reference row {ref.id}'s {ref.top1:g} "
                f"(below {floor:.0%}): a documented regression")

    def row(self, row_id: str | None) -> HardwareRow:
        """The documented row a run claims; None or 'reference' = the model's own table row."""
        if row_id in (None, "reference"):
            if self.reference_row:
                return self.row(self.reference_row)
            return HardwareRow(id="reference", hardware="reference implementation", framework=self.implementation,
                               source=self.source, top1=self.top1, top5=self.top5, num_classes=self.num_classes)
        for r in self.rows:
            if r.id == row_id:
                return r
        known = ", ".join(["reference"] + [r.id for r in self.rows])
        raise ZoogateError(f"model {self.name} has no baseline row {row_id!r} (known: {known})", self.file)


@dataclass(frozen=True)
class Tolerance:
    """A named tolerance. Scalar ones have ``value``; comparator ones have atol/rtol/cosine/top-1."""

    name: str
    why: str
    value: float | None = None
    unit: str = ""
    atol: float | None = None
    rtol: float | None = None
    cosine_min: float | None = None
    top1_agreement_min: float | None = None

    def __str__(self) -> str:
        if self.value is not None:
            return f"{self.name}={self.value:g} {self.unit}".strip()
        return (f"{self.name}: atol={self.atol:g} rtol={self.rtol:g} cosine>={self.cosine_min:g} "
                f"top1>={self.top1_agreement_min:g}")


def _where(file: Path) -> str:
    try:
        return str(file.relative_to(BASELINE_DIR.parent))
    except ValueError:
        return str(file)


def _check_keys(table: Any, spec: dict, file: Path, prefix: str) -> None:
    if not isinstance(table, dict):
        raise ZoogateError(f"{prefix}: expected a table, got {type(table).__name__}", _where(file))
    for key, (types, required) in spec.items():
        if key not in table:
            if required:
                raise ZoogateError(f"{prefix}.{key}: missing (required)", _where(file))
            continue
        value = table[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            want = " or ".join(t.__name__ for t in types).replace("int or float", "number")
            raise ZoogateError(f"{prefix}.{key}: expected {want}, got {value!r}", _where(file))
        if isinstance(value, float) and not math.isfinite(value):
            raise ZoogateError(f"{prefix}.{key}: not a finite number ({value!r})", _where(file))
    unknown = sorted(set(table) - set(spec))
    if unknown:
        raise ZoogateError(f"{prefix}: unknown key(s) {unknown} (typo?)", _where(file))


def _number_map(raw: dict, file: Path, prefix: str) -> dict[int, float]:
    out = {}
    for k, v in raw.items():
        try:
            key = int(k)
        except ValueError:
            raise ZoogateError(f"{prefix}.{k}: key must be an integer batch size", _where(file)) from None
        if not isinstance(v, _NUMBER) or isinstance(v, bool) or not v > 0:
            raise ZoogateError(f"{prefix}.{k}: expected a positive number, got {v!r}", _where(file))
        out[key] = float(v)
    return out


def _parse_preprocess(name: str, raw: dict, file: Path) -> Preprocess:
    prefix = f"preprocess.{name}"
    _check_keys(raw, _PREPROCESS_KEYS, file, prefix)
    if raw["interpolation"] not in INTERPOLATIONS:
        raise ZoogateError(f"{prefix}.interpolation: {raw['interpolation']!r} not one of {INTERPOLATIONS}", _where(file))
    for key in ("mean", "std"):
        vals = raw[key]
        if len(vals) != 3 or not all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in vals):
            raise ZoogateError(f"{prefix}.{key}: expected 3 numbers, got {vals!r}", _where(file))
    if not all(v > 0 for v in raw["std"]):
        raise ZoogateError(f"{prefix}.std: every value must be > 0, got {raw['std']!r}", _where(file))
    if raw["crop"] > raw["resize"]:
        raise ZoogateError(f"{prefix}: crop {raw['crop']} is larger than resize {raw['resize']}", _where(file))
    if raw["channel_order"] not in ("RGB", "BGR"):
        raise ZoogateError(f"{prefix}.channel_order: expected 'RGB' or 'BGR', got {raw['channel_order']!r}", _where(file))
    return Preprocess(name=name, resize=raw["resize"], crop=raw["crop"], interpolation=raw["interpolation"],
                      mean=tuple(float(v) for v in raw["mean"]), std=tuple(float(v) for v in raw["std"]),
                      channel_order=raw["channel_order"], layout=raw["layout"], source=raw["source"],
                      inferred=raw.get("inferred", False))


def _parse_row(raw: dict, file: Path, prefix: str) -> HardwareRow:
    _check_keys(raw, _ROW_KEYS, file, prefix)
    for key in ("top1", "top5"):
        if key in raw and not 0 <= raw[key] <= 100:
            raise ZoogateError(f"{prefix}.{key}: {raw[key]} is not a percentage", _where(file))
    variant = raw.get("preprocess_variant")
    if variant is not None and not VARIANT_NAME.fullmatch(variant):
        raise ZoogateError(f"{prefix}.preprocess_variant: {variant!r} is not a variant name (lower-case words "
                           f"joined by '-', e.g. 'vacc-vsx')", _where(file))
    return HardwareRow(id=raw["id"], hardware=raw["hardware"], framework=raw["framework"], source=raw["source"],
                       runner=raw.get("runner"), top1=raw.get("top1"), top5=raw.get("top5"),
                       num_classes=raw.get("num_classes"),
                       fps=_number_map(raw.get("fps", {}), file, f"{prefix}.fps"),
                       train_fps=_number_map(raw.get("train_fps", {}), file, f"{prefix}.train_fps"),
                       informational=raw.get("informational", False), preprocess_variant=variant)


def _read_toml(file: Path) -> dict:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ZoogateError(f"cannot read baseline file: {exc.strerror}", _where(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ZoogateError(f"not valid TOML: {exc}", _where(file)) from None
    except UnicodeDecodeError as exc:
        raise ZoogateError(f"not UTF-8 text (TOML must be UTF-8): {exc.reason} at byte {exc.start}", _where(file)) from None


def parse_family_file(file: Path) -> dict[str, ModelBaseline]:
    """Validate and parse one model-family file."""
    data = _read_toml(file)
    if not isinstance(data.get("family"), str):
        raise ZoogateError("family: missing (required, a string)", _where(file))
    presets_raw = data.get("preprocess", {})
    if not isinstance(presets_raw, dict):
        raise ZoogateError("preprocess: expected a table of named pipelines", _where(file))
    presets = {n: _parse_preprocess(n, raw, file) for n, raw in presets_raw.items()}
    models_raw = data.get("models")
    if not isinstance(models_raw, dict) or not models_raw:
        raise ZoogateError("models: missing or empty (required, at least one [models.NAME] table)", _where(file))
    unknown = sorted(set(data) - {"family", "preprocess", "models"})
    if unknown:
        raise ZoogateError(f"unknown top-level key(s) {unknown}", _where(file))
    out = {}
    for name, raw in models_raw.items():
        prefix = f"models.{name}"
        _check_keys(raw, _MODEL_KEYS, file, prefix)
        if raw["preprocess"] not in presets:
            raise ZoogateError(f"{prefix}.preprocess: {raw['preprocess']!r} is not a [preprocess.*] table in this file",
                               _where(file))
        for key in ("top1", "top5"):
            if key in raw and not 0 <= raw[key] <= 100:
                raise ZoogateError(f"{prefix}.{key}: {raw[key]} is not a percentage", _where(file))
        for key in ("gflops", "params_m"):
            if key in raw and not raw[key] > 0:
                raise ZoogateError(f"{prefix}.{key}: must be > 0, got {raw[key]}", _where(file))
        if raw["num_classes"] not in (1000, 1001):
            raise ZoogateError(f"{prefix}.num_classes: expected 1000 or 1001, got {raw['num_classes']}", _where(file))
        rows = tuple(_parse_row(r, file, f"{prefix}.rows[{i}]") for i, r in enumerate(raw.get("rows", [])))
        ids = [r.id for r in rows]
        if len(set(ids)) != len(ids):
            raise ZoogateError(f"{prefix}.rows: duplicate row id in {ids}", _where(file))
        if "reference_row" in raw and raw["reference_row"] not in ids:
            raise ZoogateError(f"{prefix}.reference_row: {raw['reference_row']!r} is not one of the rows {ids}",
                               _where(file))
        if "reference_row" not in raw and "top1" not in raw:
            raise ZoogateError(f"{prefix}.top1: missing (required unless reference_row names a row)", _where(file))
        out[name] = ModelBaseline(
            name=name, family=data["family"], file=_where(file), builder=raw["builder"],
            implementation=raw["implementation"], documented_implementation=raw["documented_implementation"],
            preprocess=presets[raw["preprocess"]], num_classes=raw["num_classes"], input_size=raw["input_size"],
            dataset=raw["dataset"], source=raw["source"], top1=raw.get("top1"), top5=raw.get("top5"),
            gflops=raw.get("gflops"), params_m=raw.get("params_m"),
            background_class=raw.get("background_class", False), reference_row=raw.get("reference_row"), rows=rows)
    return out


def parse_tolerance_file(file: Path) -> dict[str, Tolerance]:
    data = _read_toml(file)
    out = {}
    for name, raw in data.items():
        if not isinstance(raw, dict):
            raise ZoogateError(f"{name}: expected a table with value/why or atol/rtol/cosine_min/top1_agreement_min",
                               _where(file))
        if not isinstance(raw.get("why"), str) or not raw["why"].strip():
            raise ZoogateError(f"{name}.why: missing (every tolerance says why it has its value)", _where(file))
        numeric = {k: v for k, v in raw.items() if k not in ("why", "unit")}
        for k, v in numeric.items():
            if not isinstance(v, _NUMBER) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
                raise ZoogateError(f"{name}.{k}: expected a non-negative number, got {v!r}", _where(file))
        comparator = ("atol", "rtol", "cosine_min", "top1_agreement_min")
        if "value" in numeric:
            extra = set(numeric) - {"value"}
        elif all(k in numeric for k in comparator):
            extra = set(numeric) - set(comparator)
        else:
            raise ZoogateError(f"{name}: needs 'value', or all of {comparator}", _where(file))
        if extra:
            raise ZoogateError(f"{name}: unknown key(s) {sorted(extra)}", _where(file))
        if name in _OPEN_UNIT_INTERVAL and "value" in numeric and not 0 < numeric["value"] < 1:
            raise ZoogateError(f"{name}.value: {_OPEN_UNIT_INTERVAL[name]} must lie strictly between 0 and 1, "
                               f"got {numeric['value']!r}", _where(file))
        out[name] = Tolerance(name=name, why=raw["why"], unit=raw.get("unit", ""),
                              **{k: float(v) for k, v in numeric.items()})
    return out


@functools.lru_cache(maxsize=4)
def _load(directory: str) -> tuple[dict[str, ModelBaseline], dict[str, Tolerance]]:
    base = Path(directory)
    if not base.is_dir():
        raise ZoogateError("baseline directory not found: install from a checkout with `pip install -e .` "
                           "(baselines/ sits beside the package) or set ZOOGATE_BASELINES=DIR", base)
    models: dict[str, ModelBaseline] = {}
    tolerance_files = sorted(base.glob(TOLERANCE_GLOB))
    family_files = sorted(set(base.glob("*.toml")) - set(tolerance_files) - {base / sources.DOCUMENTS_FILE})
    for file in family_files:
        for name, mb in parse_family_file(file).items():
            if name in models:
                raise ZoogateError(f"models.{name}: defined twice (also in {models[name].file})", _where(file))
            models[name] = mb
    cited = {}
    for name, mb in models.items():
        cited[f"{mb.file}: models.{name}.source"] = mb.source
        cited[f"{mb.file}: preprocess.{mb.preprocess.name}.source"] = mb.preprocess.source
        cited.update({f"{mb.file}: models.{name} row {r.id}": r.source for r in mb.rows})
    sources.check_cited(cited, base)
    if not tolerance_files:
        raise ZoogateError(f"no tolerance file ({TOLERANCE_GLOB})", base)
    tols: dict[str, Tolerance] = {}
    for file in tolerance_files:
        for name, tol in parse_tolerance_file(file).items():
            if name in tols:
                raise ZoogateError(f"{name}: tolerance defined twice (also in another {TOLERANCE_GLOB})", _where(file))
            tols[name] = tol
    return models, tols


def load_all(directory: str | os.PathLike | None = None) -> dict[str, ModelBaseline]:
    return _load(os.fspath(directory or BASELINE_DIR))[0]


def model(name: str) -> ModelBaseline:
    models = load_all()
    if name not in models:
        raise ZoogateError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]


def tolerance(name: str) -> Tolerance:
    tols = _load(os.fspath(BASELINE_DIR))[1]
    if name not in tols:
        raise ZoogateError(f"no tolerance named {name!r} in baselines/{TOLERANCE_GLOB}")
    return tols[name]


def tolerances() -> dict[str, Tolerance]:
    return dict(_load(os.fspath(BASELINE_DIR))[1])
