"""Live evaluation of a runner over a labelled set, the fp32 reference run, and offline scoring of a device's
result folder. The accuracy gates these feed are zoogate.gates.accuracy; saved partial results are
zoogate.partial_results.

``evaluate`` streams a dataset through a Runner with the model's reference preprocessing, keeping only
each image's top-5 classes, saving partial results atomically so that ``resume=True`` continues an
interrupted run with identical numbers. Saved results carry the BuildIdentity (zoogate.identity) of the
build that made them and are reused only by exactly that build (``build_identity`` check otherwise):
``reference_run`` takes a saved fp32 reference only when it is this build's, else computes it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from zoogate import baselines
from zoogate.baselines import Preprocess
from zoogate.datasets import LabelledSet
from zoogate.errors import ZoogateError
from zoogate.input_pipeline import InputOptions, InputPipeline, PipelineStats
from zoogate.identity import BuildIdentity, BuildMismatch, describe_differences, differences
from zoogate.metrics import TOPK, AccuracySummary, TopkCounter, class_shift, describe_classes, topk_indices
from zoogate.gates.accuracy import documented_gate, label_offset_gate
from zoogate.partial_results import (PARTIAL_FROM_ANOTHER_BUILD, RESUME_HINT, STATE_UNREADABLE, state_meta,
                                     validate_state_arrays, validate_state_meta, load_state, read_state_meta,
                                     run_identity, save_state, state_file_for)

SAVE_EVERY_IMAGES = 1024        # periodic saves of partial results: about every this many images


# ---------------------------------------------------------------- results of a live run

@dataclass
class EvalResult:
    """Per-image top-5 (model class space) and labels of one runner over one labelled set."""

    model: str
    runner: str
    batch_size: int
    dataset: str                      # LabelledSet.describe()
    fingerprint: str                  # LabelledSet.fingerprint(): which images, which labels
    labels: np.ndarray                # (n,) 0-based ImageNet labels
    top5: np.ndarray                  # (n, 5) class indices in the model's output space, best first
    num_classes: int
    nonfinite_rows: int = 0
    resumed_from: int = 0             # images taken from saved partial results
    notes: list[str] = field(default_factory=list)
    identity: BuildIdentity | None = None   # the build that produced these numbers
    pipeline: PipelineStats | None = None   # input pipeline vs runner rates of the images computed here

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def predictions(self) -> np.ndarray:
        """Top-1 as 0-based ImageNet class (background predictions of a 1001-class model become -1)."""
        return self.top5[:, 0].astype(np.int64) - class_shift(self.num_classes)

    @property
    def classes_assumed(self) -> str:
        return describe_classes(self.num_classes)

    def summary(self) -> AccuracySummary:
        counter = TopkCounter(self.num_classes)
        counter.add_topk(self.top5, self.labels)
        return counter.summary(self.nonfinite_rows)


# ---------------------------------------------------------------- live evaluation

def _progress(total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:      # pragma: no cover - tqdm comes with timm
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0)


def evaluate(runner, dataset: LabelledSet, spec: Preprocess, batch_size: int, *, state_file=None,
             resume: bool = False, progress: bool = True, model: str = "", save_every: int | None = None,
             pipeline: Callable | None = None, observe: Callable[[int, np.ndarray], None] | None = None,
             identity: BuildIdentity | None = None, inputs: InputOptions | None = None) -> EvalResult:
    """Run every image of `dataset` through a loaded Runner; top-5 per image, bounded memory.

    Partial results go to `state_file` every `save_every` batches (default: about every SAVE_EVERY_IMAGES
    images) and whenever the loop stops early (KeyboardInterrupt, a runner or image error). With
    ``resume=True`` a matching saved state is continued; the final numbers equal an uninterrupted run's
    (batches keep their boundaries); a saved state of another build (``identity``, by default the runner's:
    see zoogate.identity) is refused with BuildMismatch. 1001-class outputs (index 0 = background) are
    detected from the first batch; labels are then compared shifted by +1. ``observe(first_index, logits)``
    sees each computed batch's logits (not resumed ones). Only (n, 5) class indices are kept, never the logits.
    ``inputs``: workers and crop cache of the input pipeline (zoogate.input_pipeline); its rates against the
    runner's are in the result's ``pipeline``.
    """
    if batch_size < 1:
        raise ZoogateError(f"batch size must be >= 1, got {batch_size}")
    items = dataset.items
    n = len(items)
    identity = identity or run_identity(runner, model, spec if pipeline is None else None, dataset)
    meta = state_meta(identity, dataset, batch_size)
    state_path = Path(state_file) if state_file is not None else None
    save_every = save_every or max(1, SAVE_EVERY_IMAGES // batch_size)
    notes: list[str] = []
    top5 = np.zeros((n, TOPK), dtype=np.int16)
    nonfinite = np.zeros(n, dtype=bool)
    num_classes: int | None = None
    resumed = 0
    if state_path is not None and resume and state_path.is_file():
        saved_top5, saved_nonfinite, num_classes = load_state(state_path, meta)
        resumed = len(saved_top5)
        top5[:resumed], nonfinite[:resumed] = saved_top5, saved_nonfinite
        notes.append(f"resumed: {resumed} of {n} images from {state_path}")
    elif state_path is not None and state_path.is_file():
        notes.append(f"started over: existing partial results in {state_path} replaced (pass --resume to continue)")

    source = InputPipeline([it.path for it in items], spec, batch_size, pipeline=pipeline, options=inputs)
    stats = source.stats
    bar = _progress(n, resumed, f"{model or 'model'} {meta['runner']} bs{batch_size}", progress)
    done = saved = resumed

    def save() -> None:
        nonlocal saved
        if state_path is not None and done > saved:
            save_state(state_path, meta, top5[:done], nonfinite[:done], num_classes)
            saved = done

    started = time.perf_counter()
    batches = source.batches(resumed)
    try:
        for i, batch in enumerate(batches):
            lo = done
            t0 = time.perf_counter()
            logits = runner.infer(batch)
            stats.runner_s += time.perf_counter() - t0
            if logits.shape[0] != batch.shape[0]:
                raise ZoogateError(f"runner {meta['runner']} returned {logits.shape[0]} rows for a batch of "
                                   f"{batch.shape[0]}")
            if num_classes is None:
                class_shift(logits.shape[1], f"runner {meta['runner']} output")
                num_classes = logits.shape[1]
            elif logits.shape[1] != num_classes:
                raise ZoogateError(f"runner {meta['runner']} changed its output width from {num_classes} to "
                                   f"{logits.shape[1]}")
            if observe is not None:
                observe(lo, logits)
            finite = np.isfinite(logits)
            # NaN/Inf rows are scored as they rank, NaN counting as -inf, and reported
            clean = np.where(finite, logits, np.where(np.isposinf(logits), np.inf, -np.inf))
            hi = lo + batch.shape[0]
            top5[lo:hi] = topk_indices(clean, TOPK)
            nonfinite[lo:hi] = ~finite.all(axis=1)
            done = hi
            if bar is not None:
                bar.update(batch.shape[0])
            if (i + 1) % save_every == 0:
                save()
    finally:
        batches.close()
        stats.wall_s = time.perf_counter() - started
        save()                 # whatever was computed, interrupted or not
        if bar is not None:
            bar.close()

    if num_classes is None:
        raise ZoogateError("the dataset is empty: nothing was evaluated", dataset.root)
    if num_classes == 1001:
        notes.append(describe_classes(num_classes))
    return EvalResult(model=model, runner=meta["runner"], batch_size=batch_size, dataset=dataset.describe(),
                      fingerprint=dataset.fingerprint(), labels=dataset.labels, top5=top5, num_classes=num_classes,
                      nonfinite_rows=int(nonfinite.sum()), resumed_from=resumed, notes=notes, identity=identity,
                      pipeline=stats)


def attach_pipeline(record, result: EvalResult):
    """Put the live run's input-pipeline rates on its gate record, with the host-bound warning when there is one."""
    stats = result.pipeline
    if stats is not None and stats.images:
        record.details["pipeline"] = stats.to_dict()
        warning = stats.warning()
        if warning:
            record.details.setdefault("warnings", []).append(warning)
    return record


# ---------------------------------------------------------------- gates


# ---------------------------------------------------------------- offline scoring (zoogate score, pytest --results)

def offline_runner_name(scored) -> str:
    """How a scored folder shows in gate ids: e.g. 'ais_bench-txt', 'vamp-npz'."""
    return f"{scored.results.kind.replace(' ', '-')}-{scored.results.fmt}"


def score_offline(model: str, results, labels, *, fmt: str = "auto", datalist=None, row: str | None = None,
                  allow_subset: bool = False, pick: str | None = None, output_dtype: str | None = None,
                  class_list=None):
    """Score a device's result folder against a label file and gate it: (ScoredRun, [GateRecord]).

    Gates: documented top-1 and top-5 of the claimed row (subset-aware), and the label-offset check.
    `labels` may be None for a Relay top-k TXT (ground truth from each image's synset folder).
    """
    from zoogate.datasets import labels_by_stem
    from zoogate.results import score_folder

    mb = baselines.model(model)
    mb.row(row)                                   # an unknown row is a user error before any reading
    label_map, label_source = labels_by_stem(labels) if labels is not None else (None, "")
    scored = score_folder(results, label_map, fmt=fmt, datalist=datalist, allow_subset=allow_subset,
                          labels_source=str(label_source), pick=pick, output_dtype=output_dtype,
                          class_list=class_list)
    name = offline_runner_name(scored)
    summary = scored.summary
    records = [documented_gate(model, summary, "top1", row, runner=name),
               documented_gate(model, summary, "top5", row, runner=name),
               label_offset_gate(model, summary, runner=name)]
    if mb.num_classes != summary.num_classes:
        scored.results.notes.append(f"model {model} has {mb.num_classes} classes; the results have "
                                    f"{summary.num_classes} ({summary.classes_assumed})")
    from zoogate.gates.architecture import class_count_gate

    count = class_count_gate(model, summary.num_classes)     # results from another build fail here
    count.runner = name
    records.append(count)
    return scored, records


def result_from_state(path, dataset: LabelledSet, identity: BuildIdentity) -> EvalResult | None:
    """A complete saved run of exactly the build `identity` on exactly `dataset` (any batch size), else None."""
    path = Path(path)
    if not identity.reusable or identity.dataset != dataset.fingerprint():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            top5, nonfinite = z["top5"], z["nonfinite"]
    except STATE_UNREADABLE:
        return None
    if not isinstance(meta, dict) or differences(BuildIdentity.from_dict(meta.get("identity")), identity):
        return None
    if (meta.get("done") != len(dataset) or len(top5) != len(dataset) or meta.get("num_classes") is None
            or "batch_size" not in meta):
        return None
    validate_state_meta(meta, path)
    validate_state_arrays(top5, nonfinite, meta["num_classes"], path)
    return EvalResult(model=identity.model or "", runner=identity.runner or "", batch_size=int(meta["batch_size"]),
                      dataset=dataset.describe(), fingerprint=identity.dataset, labels=dataset.labels, top5=top5,
                      num_classes=int(meta["num_classes"]), nonfinite_rows=int(nonfinite.sum()),
                      notes=[f"read from a complete saved run of this build: {path}"], identity=identity)


def _saved_states(folder, model: str, runner: str) -> list[Path]:
    """State files of any build of (model, runner), newest first."""
    folder = Path(folder)
    found = [p for p in folder.glob(f"{model}-{runner}-bs*-*.npz") if p.is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def refuse_other_builds(folder, identity: BuildIdentity, batch_size: int) -> None:
    """For --resume when this build has no saved partial results: BuildMismatch naming what differs when
    another build's interrupted run of the same (model, runner, bs) is there, so it is never continued."""
    for path in _saved_states(folder, identity.model, identity.runner):
        meta = read_state_meta(path)
        if path == state_file_for(folder, identity, batch_size) or meta is None:
            continue
        if meta.get("batch_size") != batch_size or meta.get("done", 0) >= meta.get("n", 0):
            continue          # another batch size, or a finished run: nothing of it would be resumed
        raise BuildMismatch(PARTIAL_FROM_ANOTHER_BUILD, differences(BuildIdentity.from_dict(meta.get("identity")),
                                                                 identity), path, RESUME_HINT)


def reference_run(folder, runner, dataset: LabelledSet, spec: Preprocess, *, model: str, resume: bool = False,
                  progress: bool = True, computed: Sequence[EvalResult] = (),
                  inputs: InputOptions | None = None) -> EvalResult:
    """The fp32 reference run of this build (`runner`, loaded) on `dataset`.

    Taken from `computed` (this session's results) or a complete saved run only when its identity equals
    this build's; saved references of other builds (other weights, artifact, preprocessing) are never used:
    the reference is then computed (and saved under `folder`), noting which saved ones were refused and why.
    """
    expected = run_identity(runner, model, spec, dataset)
    for result in computed:
        if result.identity is not None and not differences(result.identity, expected):
            return result
    refused = []
    for path in _saved_states(folder, model, expected.runner):
        found = result_from_state(path, dataset, expected)
        if found is not None:
            return found
        meta = read_state_meta(path) or {}
        saved = BuildIdentity.from_dict(meta.get("identity"))
        if saved is not None and saved.dataset == expected.dataset and meta.get("done") == meta.get("n"):
            refused.append(f"{path.name} ({describe_differences(differences(saved, expected))})")
    bs = runner.batch_size or 8
    result = evaluate(runner, dataset, spec, bs, state_file=state_file_for(folder, expected, bs) if folder else None,
                      resume=resume, progress=progress, model=model, identity=expected, inputs=inputs)
    if refused:
        result.notes.append("computed for this build; saved reference runs of other builds not used: "
                            + "; ".join(refused))
    return result
