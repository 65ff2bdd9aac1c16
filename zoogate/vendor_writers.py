"""Write result folders and files in the vendors' formats, for fixtures and side-by-side checks.

- ais_bench (``--outfmt TXT|BIN|NPY``): ``<input name cut at its first dot>_<output index>.<ext>``; TXT =
  ``%f`` values, each followed by one space, then a newline; BIN = the raw output dtype (``tofile``); NPY =
  ``np.save``. The summary JSON is ``<output prefix>_summary.json``: beside the folder, or inside it as
  ``_summary.json`` when ``--output_dirname`` ended with '/'. Multi-device runs write ``<run>/device<id>/``
  (2023) or ``<run>/device<id>_<index>/`` (2025), each with ``<run>/<that name>_summary.json``.
- vamp (``--path_output``): one ``.npz`` per image, key ``output_0``, shape (1, C); the datalist holds the
  inputs' absolute ``.npz`` paths in run order.
- Relay top-k TXT (the VACC classification sample and npz decoder): 5 lines per image,
  ``<path>: Relay top-<k> id: <N>, prob: <P:.8f>, class name: <NAME>`` for k = 0..4.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from zoogate.labelmap import first_dot

SUMMARY_SUFFIX = "_summary.json"
OUTPUT_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64}
RELAY_TOPK = 5


def _summary_doc(count: int) -> dict:
    # the shape ais_bench writes: per-timing {min, max, mean, median, percentile(99%), count}
    stats = lambda ms: {"min": ms, "max": ms, "mean": ms, "median": ms, "percentile(99%)": ms, "count": count}
    return {"NPU_compute_time": stats(1.0), "H2D_latency": stats(0.1), "D2H_latency": stats(0.05),
            "throughput": 1000.0}


def write_ais_bench(folder, stems: Sequence[str], logits: np.ndarray, fmt: str = "txt", summary: bool = True,
                    *, dtype: str = "fp32", summary_inside: bool = False) -> Path:
    """Write outputs as ais_bench does, one file per input name in `stems` (an image or input file name:
    it is cut at its first dot, as ais_bench cuts it). `dtype` is the model's output dtype.
    The summary JSON goes beside the folder, or inside it as ``_summary.json`` (`summary_inside`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype is one of {sorted(OUTPUT_DTYPES)}, not {dtype!r}")
    logits = np.asarray(logits).astype(OUTPUT_DTYPES[dtype])
    for stem, row in zip(stems, logits):
        out = folder / f"{first_dot(stem)}_0.{fmt}"
        row2d = row.reshape(-1, row.shape[-1])
        if fmt == "txt":
            out.write_text("".join("".join(f"{float(v):f} " for v in r) + "\n" for r in row2d))
        elif fmt == "bin":
            row.tofile(out)
        elif fmt == "npy":
            np.save(out, row.reshape(1, -1))
        else:
            raise ValueError(f"ais_bench writes txt, bin or npy, not {fmt!r}")
    if summary:
        where = folder / SUMMARY_SUFFIX if summary_inside else folder.parent / f"{folder.name}{SUMMARY_SUFFIX}"
        where.write_text(json.dumps(_summary_doc(len(stems))) + "\n")
    return folder


def device_shares(n: int, jobs: int, style: str, divide: bool) -> list[range]:
    """Which inputs each device gets: 2023 always splits into contiguous chunks of ceil(n / jobs); 2025
    gives every device everything unless --divide_input, then near-equal contiguous parts (the first
    n % jobs parts one longer)."""
    if style == "2023":
        size = math.ceil(n / jobs)
        return [range(min(n, i * size), min(n, (i + 1) * size)) for i in range(jobs)]
    if not divide:
        return [range(n)] * jobs
    base, extra = divmod(n, jobs)
    starts = [i * base + min(i, extra) for i in range(jobs + 1)]
    return [range(starts[i], starts[i + 1]) for i in range(jobs)]


def write_ais_bench_devices(run_folder, stems: Sequence[str], logits: np.ndarray, fmt: str = "txt", *,
                            devices: Sequence[int] = (0, 1), style: str = "2023", divide: bool = True,
                            dtype: str = "fp32") -> list[Path]:
    """A multi-device ais_bench run: ``run/device<id>/`` (style 2023) or ``run/device<id>_<index>/`` (2025),
    each device's share of the inputs (see device_shares), and ``run/<device folder>_summary.json``."""
    if style not in ("2023", "2025"):
        raise ValueError(f"style is 2023 or 2025, not {style!r}")
    run_folder = Path(run_folder)
    shares = device_shares(len(stems), len(devices), style, divide)
    folders = []
    for index, (device, share) in enumerate(zip(devices, shares)):
        name = f"device{device}" if style == "2023" else f"device{device}_{index}"
        folders.append(write_ais_bench(run_folder / name, [stems[i] for i in share], np.asarray(logits)[list(share)],
                                       fmt, dtype=dtype))
    return folders


def write_vamp(folder, stems: Sequence[str], logits: np.ndarray, datalist, output_names: Sequence[str] | None = None,
               input_dir: str = "/data/input_npz") -> Path:
    """Write vamp-style outputs (one .npz per image, key output_0, shape (1, C)) and the datalist of the
    inputs (one absolute ``<input_dir>/<stem>.npz`` per line, run order). Outputs are named ``<stem>.npz``
    unless `output_names` gives the names (``vamp_output_names`` gives vamp's own numbering)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(output_names) if output_names is not None else [f"{s}.npz" for s in stems]
    for name, row in zip(names, np.asarray(logits)):
        np.savez(folder / name, output_0=row.reshape(1, -1))
    Path(datalist).write_text("".join(f"{input_dir}/{s}.npz\n" for s in stems))
    return folder


def vamp_output_names(n: int, padded: bool = True) -> list[str]:
    """vamp's output names by datalist position: output_000000.npz ... (padded), or output_0.npz ..."""
    return [f"output_{i:06d}.npz" if padded else f"output_{i}.npz" for i in range(n)]


def relay_lines(image_path: str, scores: np.ndarray, class_names: Sequence[str]) -> str:
    """The 5 Relay top-k lines of one image: the best classes first (ties: lower index first)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="stable")[:RELAY_TOPK]
    return "".join(f"{image_path}: Relay top-{k} id: {int(i)}, prob: {scores[i]:.8f}, class name: {class_names[i]}\n"
                   for k, i in enumerate(order))


def write_relay_txt(path, image_paths: Sequence[str], scores: np.ndarray, class_names: Sequence[str], *,
                    append: bool = False) -> Path:
    """A Relay top-k TXT as the VACC classification sample writes it (append mode when `append`)."""
    path = Path(path)
    with open(path, "a" if append else "w", encoding="utf-8", newline="\n") as fh:
        for image, row in zip(image_paths, np.asarray(scores)):
            fh.write(relay_lines(str(image), row, class_names))
    return path
