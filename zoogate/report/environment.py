"""The environment block of a gate report: versions, vendor SDKs, devices, host fingerprint, seeds."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

# distribution names reported in the environment block (module name when it differs)
PACKAGES = ("torch", "torchvision", "timm", "onnxruntime", "onnx", "onnxscript", "openvino", "numpy", "pillow",
            "pytest", "pytest-benchmark")
VENDOR_MODULES = ("ais_bench", "aclruntime", "acl", "vaststreamx", "tensorrt", "pycuda")


def _dist_version(name: str) -> str | None:
    from zoogate.throughput import package_version

    return package_version(name) or package_version(name.replace("-", "_"))


def _vendor_sdk(module: str) -> str | None:
    """Version of a vendor module without importing it; None when it is not installed. Never raises."""
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return _dist_version(module) or "importable (version unknown)"
    except Exception:          # a broken vendor install must not break the report
        return "importable (version unknown)"


def _cann_version() -> str | None:
    home = os.environ.get("ASCEND_TOOLKIT_HOME")
    if not home:
        return None
    for name in ("version.cfg", "ascend_toolkit_install.info", "version.info"):
        try:
            text = Path(home, name).read_text(errors="replace")
        except OSError:
            continue
        m = re.search(r"version\s*[=:]\s*\[?([\w.\-]+)", text, re.I)
        if m:
            return m.group(1)
    return f"{home} (version file not found)"


def _devices() -> dict[str, str]:
    """Each backend's hardware (hardware.registry markers): what was found, or why it is absent."""
    out = {}
    try:
        from hardware import registry

        declared = list(registry.markers().values())
    except Exception as exc:          # detection must never fail the report
        return {"backends": f"unknown: {type(exc).__name__}: {exc}"}
    for marker in declared:
        try:
            ok, why = marker.detect()
            out[marker.device_name] = why if ok else f"absent: {why}"
        except Exception as exc:      # detection must never fail the report
            out[marker.device_name] = f"unknown: {type(exc).__name__}: {exc}"
    return out


def _ort_providers() -> list[str] | None:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except Exception:
        return None


def default_seeds() -> dict[str, Any]:
    """The seeds the suite's generated data and weights come from (where those modules say)."""
    seeds: dict[str, Any] = {"pythonhashseed": os.environ.get("PYTHONHASHSEED")}
    from zoogate import weights_recipe

    seeds["weights_seed"] = weights_recipe.DEFAULT_SEED
    seeds["calibration"] = dict(weights_recipe.CALIBRATION)
    return seeds


def environment(*, seeds: dict | None = None) -> dict:
    """Versions, vendor SDKs, devices, host fingerprint, seeds. Lazy and never failing."""
    from zoogate import throughput

    try:
        fp = throughput.host_fingerprint()
        hid = throughput.host_id(fp)
    except Exception as exc:
        fp, hid = {"error": f"{type(exc).__name__}: {exc}"}, None
    import zoogate

    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "zoogate": zoogate.__version__,
        "packages": {name: _dist_version(name) for name in PACKAGES},
        "vendor_sdks": {**{m: _vendor_sdk(m) for m in VENDOR_MODULES}, "cann_toolkit": _cann_version(),
                        "onnxruntime_providers": _ort_providers()},
        "devices": {"cpu": fp.get("cpu"), **_devices()},
        "host_fingerprint": fp,
        "host_id": hid,
        "seeds": {**default_seeds(), **(seeds or {})},
    }
