"""The backends, found rather than listed: runner name -> class, marker name -> Marker.

Built-in backends are the modules of the ``hardware`` package that define ``BACKEND`` (a
hardware.base.Backend); third-party ones come through the ``zoogate.backends`` entry point group, each
entry naming a module with ``BACKEND`` or a Backend object, so a vendor can ship ``zoogate-foo`` as its
own package::

    [project.entry-points."zoogate.backends"]
    foo = "zoogate_foo.backend"

Backend modules import no torch, onnxruntime or vendor SDK at import time (runners import them in
load()), so finding them is cheap. Every marker a runner carries must be declared by some backend;
``npu`` (any accelerator card) is implied by every marker declared ``npu=True``.

A runner spec is ``NAME`` or ``NAME:key=value,key=value`` (runner options, e.g.
``onnxruntime-cann:precision_mode=must_keep_origin_dtype,op_select_impl_mode=high_precision`` or
``vacc:precision=int8``); option names are checked against the runner's declared ``options``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import hardware
from hardware.base import Backend, Marker, Runner
from zoogate.errors import ZoogateError

ENTRY_POINT_GROUP = "zoogate.backends"
NPU = "npu"                 # the marker meaning "any accelerator card"
RESERVED_MARKERS = (NPU, "slow")


@dataclass(frozen=True)
class RunnerSpec:
    name: str
    options: dict = field(default_factory=dict, hash=False, compare=True)

    @property
    def marker(self) -> str | None:
        return marker(self.name)


def _backend_of(obj, where: str) -> Backend | None:
    found = getattr(obj, "BACKEND", None) if isinstance(obj, ModuleType) else obj
    if found is None and isinstance(obj, ModuleType):
        return None
    if not isinstance(found, Backend):
        raise ZoogateError(f"backend {where}: expected a hardware.base.Backend (or a module with BACKEND), "
                           f"got {type(found).__name__}")
    return found


def _builtin() -> list[Backend]:
    found = []
    for info in sorted(pkgutil.iter_modules(hardware.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        backend = _backend_of(importlib.import_module(f"{hardware.__name__}.{info.name}"), f"hardware.{info.name}")
        if backend is not None:
            found.append(backend)
    return found


def _entry_points() -> list[Backend]:
    found = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as exc:     # a broken third-party package: say which one, never a bare traceback
            raise ZoogateError(f"backend {where} cannot be loaded: {type(exc).__name__}: {exc}") from None
        backend = _backend_of(obj, where)
        if backend is None:
            raise ZoogateError(f"backend {where}: the module defines no BACKEND")
        found.append(backend)
    return found


def _check(backends: list[Backend]) -> None:
    runners: dict[str, str] = {}
    markers: dict[str, str] = {}
    for b in backends:
        for m in b.markers:
            if m.name in RESERVED_MARKERS or m.name in markers:
                owner = "zoogate" if m.name in RESERVED_MARKERS else f"backend {markers[m.name]}"
                raise ZoogateError(f"backend {b.name}: marker {m.name!r} is already declared by {owner}")
            markers[m.name] = b.name
        for cls in b.runners:
            if not (isinstance(cls, type) and issubclass(cls, Runner)):
                raise ZoogateError(f"backend {b.name}: runners must be hardware.base.Runner classes, got {cls!r}")
            if cls.name in runners:
                raise ZoogateError(f"backend {b.name}: runner {cls.name!r} is already declared by backend "
                                   f"{runners[cls.name]}")
            runners[cls.name] = b.name
    for b in backends:
        for cls in b.runners:
            if cls.marker is not None and cls.marker not in markers:
                raise ZoogateError(f"backend {b.name}: runner {cls.name} carries marker {cls.marker!r}, which no "
                                   f"backend declares (known: {', '.join(markers) or 'none'})")


@functools.lru_cache(maxsize=1)
def backends() -> tuple[Backend, ...]:
    """Built-in backends (module order), then entry-point ones (name order); checked for clashes."""
    found = _builtin() + _entry_points()
    _check(found)
    return tuple(found)


def refresh() -> None:
    """Forget what was found (after installing a backend package in this process; tests)."""
    backends.cache_clear()


def _tier(cls: type[Runner]) -> int:
    if cls.marker is None:
        return 0
    return 2 if markers()[cls.marker].npu else 1


def runners() -> dict[str, type[Runner]]:
    """Runner name -> class. Order = order of test parameters: runners without a marker, then those on
    non-card hardware (gpu), then accelerator cards; discovery order within each."""
    every = [cls for b in backends() for cls in b.runners]
    return {cls.name: cls for cls in sorted(every, key=_tier)}


def markers() -> dict[str, Marker]:
    """Marker name -> Marker, every backend's."""
    return {m.name: m for b in backends() for m in b.markers}


def npu_markers() -> list[str]:
    """The markers of accelerator cards (each implies ``npu``)."""
    return [name for name, m in markers().items() if m.npu]


def card_runners() -> list[str]:
    """The runners on an accelerator card (their marker implies ``npu``), in runner order."""
    cards = set(npu_markers())
    return [name for name, cls in runners().items() if cls.marker in cards]


def detect(marker_name: str) -> tuple[bool, str]:
    """Is the hardware of a marker here? ``npu``: any accelerator card. (ok, what was found or why not)."""
    if marker_name == NPU:
        results = [markers()[n].detect() for n in npu_markers()]
        if any(ok for ok, _ in results):
            return True, NPU
        return False, "; ".join(why for _, why in results) or "no accelerator card backend is installed"
    if marker_name not in markers():
        raise ZoogateError(f"unknown hardware marker {marker_name!r}; known: {', '.join(markers())}")
    return markers()[marker_name].detect()


def faults() -> list:
    """The fault-matrix rows the backends declare (zoogate.faults.Fault), in backend order."""
    return [f for b in backends() if b.faults is not None for f in b.faults()]


def names() -> list[str]:
    return list(runners())


def marker(name: str) -> str | None:
    return get(name).marker


def get(name: str) -> type[Runner]:
    """The Runner class for a registry name."""
    known = runners()
    if name not in known:
        raise ZoogateError(f"unknown runner {name!r}; known: {', '.join(known)}")
    return known[name]


def create(name: str, *, device_id: int = 0, **options) -> Runner:
    """An unloaded runner instance; options go to the runner (CANN provider options, precision, ...)."""
    return get(name)(device_id=device_id, **options)


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> RunnerSpec:
    """'NAME' or 'NAME:key=value,key=value' -> RunnerSpec (ZoogateError on an unknown name or option)."""
    name, _, rest = text.strip().partition(":")
    cls = get(name)
    options = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ZoogateError(f"runner option {item!r} in {text!r}: expected key=value")
        key = key.strip()
        if key not in cls.options:
            raise ZoogateError(f"runner {name} has no option {key!r} (in {text!r}); "
                               f"known: {', '.join(cls.options) or 'none'}")
        options[key] = _value(value.strip())
    return RunnerSpec(name, options)
