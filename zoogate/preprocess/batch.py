"""Preprocess a folder of images into one output file per image: the engine of `zoogate preprocess`.

Rules (each one is tested in suites/test_preprocess_cli.py):
- bin and npy: every regular file under SRC is an input, recursively; what is left out (hidden names
  starting with ".", symlinked folders, which are not followed, special files) is listed in the report;
  a file that is not an image FAILS with the reason, it is not skipped;
- npz (the VACC image2npz.py flow): the inputs are the files that tool takes, ``**/*.JPEG`` under SRC
  (recursive, case-sensitive, in glob's order, which is the datalist's order); every other file is
  listed as left out;
- where the outputs go (writers.output_path): bin flat in OUT, named as the Ascend script names them
  (everything before the first dot), so sub-folders of SRC are flattened; npy mirrors SRC's sub-folders;
  npz goes to OUT/<parent folder name>/<stem>.npz, as image2npz.py lays it out;
- two inputs that would write the same output are an error naming both, before anything is written;
- nothing is ever written inside SRC (OUT equal to or inside SRC is refused), and existing outputs
  are not replaced unless overwrite=True (checked before anything is written);
- --vdsp-params is read and checked against the model wherever a flow reads it (the vacc variants,
  npz), and refused where nothing would read it;
- one bad file never stops the others: its error is collected and the run goes on.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.preprocess import variants as V
from zoogate.preprocess import writers
from zoogate.preprocess.decoders import decode
from zoogate.preprocess.vdsp import VampInput

TORCH_VARIANTS = ("reference", "timm-eval")      # variants whose pipeline runs torch ops
NPZ_VARIANT = "vacc-vamp"                        # the flow that reads npz files
NPZ_PATTERN = "*.JPEG"                           # what image2npz.py takes: case-sensitive, recursive


@dataclass(frozen=True)
class Job:
    model: str
    src: Path
    out: Path
    variant: str = "reference"
    fmt: str = "npy"
    vdsp_params: Path | None = None
    jobs: int = 1
    overwrite: bool = False
    datalist: str | None = None              # npz only: the datalist's file name in OUT

    @property
    def datalist_name(self) -> str:
        return self.datalist or writers.DATALIST_NAME


@dataclass
class Plan:
    items: list[tuple[Path, Path]]               # (input, output) to process
    left_out: list[tuple[Path, str]]             # (entry, why) not taken as inputs, reported


@dataclass
class Report:
    job: Job
    written: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    datalist: Path | None = None

    @property
    def total(self) -> int:
        return len(self.written) + len(self.failures)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _validate_vdsp(job: Job) -> None:
    reads_vdsp = job.variant in V.VDSP_VARIANTS or job.fmt == "npz"
    if job.vdsp_params is None:
        if reads_vdsp:
            what = "--format npz (vamp preprocesses the npz with it)" if job.fmt == "npz" else f"--variant {job.variant}"
            raise ZoogateError(f"{what} needs --vdsp-params FILE: the vdsp_params JSON of the VACC build (the model "
                               "zoo's files are in fixtures/vdsp_params/)")
        return
    if not reads_vdsp:
        raise ZoogateError(f"--vdsp-params is read only by the VACC flows (--variant {', '.join(V.VDSP_VARIANTS)}, "
                           f"--format npz), not by --variant {job.variant} --format {job.fmt}; leave it out",
                           job.vdsp_params)
    V.vdsp_for_model(job.vdsp_params, job.model)


def validate(job: Job) -> None:
    """Everything that makes the whole run impossible, before any file is touched (ZoogateError)."""
    baselines.model(job.model)
    if job.fmt not in writers.FORMATS:
        raise ZoogateError(f"unknown format {job.fmt!r}; known: {', '.join(writers.FORMATS)}")
    if job.variant not in V.VARIANTS:
        raise ZoogateError(f"unknown variant {job.variant!r}; known: {', '.join(V.VARIANTS)}")
    if job.fmt == "npz" and job.variant != NPZ_VARIANT:
        raise ZoogateError(f"--format npz writes the raw uint8 image that vamp hands to the card's vdsp op (the "
                           f"{NPZ_VARIANT} flow); it goes with --variant {NPZ_VARIANT}, not {job.variant}")
    if job.datalist is not None:
        if job.fmt != "npz":
            raise ZoogateError(f"--datalist names the npz datalist; --format {job.fmt} writes none")
        if job.datalist in ("", ".", "..") or os.sep in job.datalist or (os.altsep and os.altsep in job.datalist):
            raise ZoogateError(f"--datalist {job.datalist!r}: expected a file name (it is written in --out), "
                               "not a path")
    if job.jobs < 1:
        raise ZoogateError(f"--jobs must be >= 1, got {job.jobs}")
    _validate_vdsp(job)
    if not job.src.exists():
        raise ZoogateError("source folder not found", job.src)
    if not job.src.is_dir():
        raise ZoogateError("source is not a folder", job.src)
    src, out = job.src.resolve(), job.out.resolve()
    if _inside(out, src):
        raise ZoogateError(f"output folder {job.out} is inside the source folder; zoogate never writes into the "
                           "source folder: choose an --out outside it", job.src)
    if out.exists() and not out.is_dir():
        raise ZoogateError("output exists and is not a folder", job.out)
    if job.fmt != "npz":
        V.build(job.variant, job.model, vdsp_params=job.vdsp_params)   # surfaces a bad vdsp JSON, non-timm model


def discover(src: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(inputs, left_out): every regular file under src, sorted, and each entry not taken, with why."""
    inputs, left_out = [], []
    for root, dirs, files in os.walk(src):
        keep = []
        for d in sorted(dirs):
            path = Path(root) / d
            if d.startswith("."):
                left_out.append((path, "hidden"))
            elif path.is_symlink():
                left_out.append((path, "symlinked folder, not followed"))
            else:
                keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith("."):
                left_out.append((path, "hidden"))
            elif path.is_file():
                inputs.append(path)
            else:
                left_out.append((path, "not a regular file"))
    return inputs, left_out


def discover_jpeg(src: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """image2npz.py's inputs: ``glob(SRC/**/*.JPEG, recursive=True)`` in glob's own order (the tool does not
    sort; neither do we, so the datalist lists the images in the order the tool would); left out: every
    other file under SRC."""
    found = glob.glob(os.path.join(glob.escape(os.fspath(src)), "**", NPZ_PATTERN), recursive=True)
    inputs, left_out = [], []
    for path in map(Path, found):
        if path.is_file():
            inputs.append(path)
        else:
            left_out.append((path, "not a regular file"))
    taken = {os.path.abspath(p) for p in inputs}
    files, skipped = discover(src)           # glob skips hidden names too, but follows symlinked folders
    left_out += [(p, f"not {NPZ_PATTERN} (image2npz.py reads only {NPZ_PATTERN} files)")
                 for p in files if os.path.abspath(p) not in taken]
    return inputs, left_out + [(p, why) for p, why in skipped if why == "hidden"]


def _collision_error(collisions: list[tuple[Path, Path, Path]], job: Job) -> ZoogateError:
    why = {"bin": "a .bin is named by everything before the first dot of the image's name, all in one folder, as "
                  "the Ascend script names them and ais_bench reads them",
           "npz": "an .npz goes to <parent folder name>/<stem>.npz, as image2npz.py lays them out",
           "npy": "same folder and stem"}[job.fmt]
    shown = "; ".join(f"{a} and {b} both give {t.relative_to(job.out)}" for a, b, t in collisions[:3])
    more = f"; and {len(collisions) - 3} more" if len(collisions) > 3 else ""
    return ZoogateError(f"{len(collisions)} output name collision(s): {shown}{more} ({why}); rename one of each "
                        "pair; nothing was written", job.src)


def plan(job: Job) -> Plan:
    validate(job)
    inputs, left_out = discover_jpeg(job.src) if job.fmt == "npz" else discover(job.src)
    if not inputs:
        what = f"no {NPZ_PATTERN} files (image2npz.py's pattern, case-sensitive)" if job.fmt == "npz" else "no files"
        raise ZoogateError(f"{what} to preprocess" + (f" ({len(left_out)} entries left out)" if left_out else ""),
                           job.src)
    items, claimed, collisions = [], {}, []
    for path in inputs:
        target = writers.output_path(job.out, path, job.src, job.fmt)
        if target in claimed:
            collisions.append((claimed[target], path, target))
            continue
        claimed[target] = path
        items.append((path, target))
    if collisions:
        raise _collision_error(collisions, job)
    existing = [t for _, t in items if t.exists()]
    if job.fmt == "npz" and (job.out / job.datalist_name).exists():
        existing.append(job.out / job.datalist_name)
    if existing and not job.overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ZoogateError(f"{len(existing)} output file(s) already exist ({shown}); nothing was written. "
                           "Pass --overwrite to replace them, or choose another --out", job.out)
    return Plan(items, left_out)


# ---- per-file work (in this process or in pool workers) ----

_WORKER: dict = {}


def _init_worker(job: Job) -> None:
    _WORKER["job"] = job
    _WORKER["pipeline"] = None if job.fmt == "npz" else V.build(job.variant, job.model, vdsp_params=job.vdsp_params)
    if job.variant in TORCH_VARIANTS and job.jobs > 1:
        import torch
        torch.set_num_threads(1)        # one process per core already


def _process(item: tuple[Path, Path]) -> str | None:
    """Decode, preprocess, write one file; the error text (naming the file) or None."""
    src, target = item
    job: Job = _WORKER["job"]
    try:
        img = decode(src, V.decoder_of(job.variant))      # the variant's documented decoder
        if job.fmt == "npz":
            writers.write_npz_image(target, VampInput()(img))
        else:
            writers.write_tensor(target, _WORKER["pipeline"](img), job.fmt)
        return None
    except ZoogateError as exc:
        return str(exc)
    except MemoryError:
        return f"{src}: out of memory while preprocessing (image too large?)"
    except Exception as exc:  # noqa: BLE001 - one file's unexpected failure is reported, the run goes on
        return f"{src}: {type(exc).__name__}: {exc}"


def _results(job: Job, items: list[tuple[Path, Path]]):
    if job.jobs == 1:
        from contextlib import nullcontext

        _init_worker(job)
        ctx = nullcontext()
        if job.variant in TORCH_VARIANTS:
            from zoogate.preprocess.reference import torch_threads
            ctx = torch_threads(1)
        with ctx:
            for item in items:
                yield _process(item)
        return
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    mp = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=job.jobs, mp_context=mp, initializer=_init_worker, initargs=(job,)) as pool:
        yield from pool.map(_process, items, chunksize=max(1, min(16, len(items) // (job.jobs * 8) or 1)))


def run(job: Job, progress: Callable[[int], None] | None = None, planned: Plan | None = None) -> Report:
    """Process every planned file; ZoogateError only for problems that stop the whole run."""
    p = planned or plan(job)
    report = Report(job, left_out=p.left_out)
    for (src, target), error in zip(p.items, _results(job, p.items)):
        if error is None:
            report.written.append(target)
        else:
            report.failures.append((src, error))
        if progress:
            progress(1)
    if job.fmt == "npz" and report.written:
        report.datalist = writers.write_datalist(job.out, report.written, job.datalist_name)
    report.failures.sort(key=lambda f: str(f[0]))
    return report
