"""Hardware detection: is an Ascend NPU, a VACC card, or a CUDA GPU here? Each answer says why not.

Detection follows ../shared/reference/hardware.md: Ascend via npu-smi / /dev/davinci* / ASCEND_TOOLKIT_HOME,
VACC via vasmi / /dev/vastai* , CUDA via torch. Results are cached per process; nothing is imported
from a vendor SDK here.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil


@functools.lru_cache(maxsize=None)
def ascend() -> tuple[bool, str]:
    smi = shutil.which("npu-smi")
    nodes = glob.glob("/dev/davinci[0-9]*")
    home = os.environ.get("ASCEND_TOOLKIT_HOME")
    if not (smi or nodes):
        return False, ("no Ascend device: npu-smi not found and no /dev/davinci* nodes"
                       + ("" if home else "; ASCEND_TOOLKIT_HOME unset")
                       + " (install the driver and source /usr/local/Ascend/ascend-toolkit/set_env.sh)")
    if not home:
        return False, ("Ascend device present but ASCEND_TOOLKIT_HOME unset: "
                       "source /usr/local/Ascend/ascend-toolkit/set_env.sh")
    return True, f"Ascend: {smi or nodes[0]}"


@functools.lru_cache(maxsize=None)
def ais_bench() -> tuple[bool, str]:
    ok, why = ascend()
    if not ok:
        return ok, why
    if importlib.util.find_spec("ais_bench") is None:
        return False, "ais_bench not importable: install ais_bench and aclruntime from the Ascend tools repository"
    return True, "ais_bench"


@functools.lru_cache(maxsize=None)
def vacc() -> tuple[bool, str]:
    smi = shutil.which("vasmi")
    nodes = glob.glob("/dev/vastai*")
    if not (smi or nodes):
        return False, ("no VACC device: vasmi not found and no /dev/vastai* nodes "
                       "(install the Vastai driver and put vasmi on PATH)")
    if importlib.util.find_spec("vaststreamx") is None:
        return False, "VACC device present but vaststreamx not importable: install the VastStreamX wheel"
    return True, f"VACC: {smi or nodes[0]}"


@functools.lru_cache(maxsize=None)
def cuda() -> tuple[bool, str]:
    import torch

    if not torch.cuda.is_available():
        return False, f"no CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__})"
    return True, f"CUDA: {torch.cuda.get_device_name(0)}"


# marker -> detector; `npu` means any accelerator card
MARKER_DETECTORS = {"ascend": ascend, "vacc": vacc, "gpu": cuda}


def marker_available(marker: str) -> tuple[bool, str]:
    if marker == "npu":
        results = [ascend(), vacc()]
        if any(ok for ok, _ in results):
            return True, "npu"
        return False, "; ".join(why for _, why in results)
    return MARKER_DETECTORS[marker]()
