"""Accuracy gates (gate="accuracy") and live evaluation of a runner over a labelled set.

Gates, each a plain function returning a GateRecord:
- ``documented_gate``   check top1/top5: measured vs the baseline row the run claims (tolerance
  top1_abs_pp / top5_abs_pp). On a subset the gate fails only when the documented value lies outside the
  measured Wilson interval (confidence wilson_confidence) widened by the tolerance, and is INCONCLUSIVE
  when that widened interval is wider than accuracy_interval_max_pp (too few images to tell). A row that
  documents no such number, or an informational row, is INCONCLUSIVE: there is nothing to pass against.
- ``reference_gate``    check top1_vs_reference: measured top-1 >= reference_agreement_top1 x the fp32
  reference run's top-1 on the same images (MLPerf's 99 % rule).
- ``label_offset_gate`` check label_offset: fails when shifting the labels by one class scores far better
  than the labels as scored (a 1000/1001 background mix-up can never pass silently).

``evaluate`` streams a dataset through a Runner with the model's reference preprocessing, keeping only
each image's top-5 classes, saving partial results atomically so that ``resume=True`` continues an
interrupted run with identical numbers. Saved results carry the BuildIdentity (zoogate.identity) of the
build that made them and are reused only by exactly that build (``build_identity`` check otherwise):
``reference_run`` takes a saved fp32 reference only when it is this build's, else computes it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from zoogate import baselines
from zoogate.baselines import Preprocess
from zoogate.datasets import IMAGENET_VAL_SIZE, LabelledSet, generated_jpegs, write_imagenet_layout
from zoogate.errors import ZoogateError
from zoogate.identity import BuildIdentity, BuildMismatch, describe_differences, differences, of_runner
from zoogate.metrics import (BACKGROUND_CLASSES, IMAGENET_CLASSES, TOPK, AccuracySummary, TopkCounter, class_shift,
                             describe_classes, topk_indices, wilson_interval)
from zoogate.record import FAIL, INCONCLUSIVE, PASS, SKIP, GateRecord, at_least

STATE_VERSION = 2                # 2: partial results carry the BuildIdentity of the build that made them
SAVE_EVERY_IMAGES = 1024        # periodic saves of partial results: about every this many images
NO_IMAGENET = "no ImageNet: pass --imagenet DIR"
_ROUNDING_PP = 1e-9             # float rounding of hits / n * 100 at a boundary; not a tolerance


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


# ---------------------------------------------------------------- partial results on disk

PARTIAL_FROM_ANOTHER_BUILD = "saved partial results are from another build"
RESUME_HINT = "; run without --resume to start this build over (the saved file is not used)"


def run_identity(runner, model: str, spec: Preprocess | None, dataset: LabelledSet) -> BuildIdentity:
    """The identity of `runner` scoring `dataset` through `spec` (None: a pipeline that is not the spec's)."""
    return of_runner(runner, model=model, preprocess=spec.describe() if spec is not None else None,
                     dataset=dataset.fingerprint())


def _state_meta(identity: BuildIdentity, dataset: LabelledSet, batch_size: int) -> dict:
    return {"version": STATE_VERSION, "identity": identity.to_dict(), "model": identity.model,
            "runner": identity.runner, "batch_size": int(batch_size), "n": len(dataset)}


def state_file_for(folder, identity: BuildIdentity, batch_size: int) -> Path:
    """Where the partial results of exactly this build go: the identity's hash is in the name."""
    return Path(folder) / f"{identity.model}-{identity.runner}-bs{batch_size}-{identity.digest()}.npz"


_STATE_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_state_meta(path) -> dict | None:
    """The meta block of a saved state file, None when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
    except _STATE_UNREADABLE:
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


def _validate_state_meta(saved, path: Path) -> None:
    """The JSON of a partial-results file holds what save_state wrote: an object, counts as integers."""
    if not isinstance(saved, dict):
        raise ZoogateError(f"saved partial results: meta is a JSON {type(saved).__name__}, expected an object"
                           + _HAND_EDITED, path)
    for key in ("done", "batch_size", "n"):
        value = saved.get(key)
        if key in saved and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ZoogateError(f"saved partial results: meta {key} is {value!r}, expected a count" + _HAND_EDITED,
                               path)


def _validate_state_arrays(top5: np.ndarray, nonfinite: np.ndarray, num_classes, path: Path) -> None:
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
    except _STATE_UNREADABLE as exc:
        raise ZoogateError(f"saved partial results are unreadable ({exc}); delete the file to start over", path) \
            from None
    _validate_state_meta(saved, path)
    _validate_state_arrays(top5, nonfinite, saved.get("num_classes"), path)
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


# ---------------------------------------------------------------- live evaluation

def _pipeline(spec: Preprocess) -> Callable:
    """The reference preprocessing: zoogate.preprocess.fast (bit-identical, faster) when present."""
    try:
        from zoogate.preprocess.fast import FastPipeline

        return FastPipeline(spec)
    except ImportError:      # pragma: no cover - fast is part of the package
        from zoogate.preprocess.reference import preprocess_reference

        return lambda img: preprocess_reference(img, spec)


def _load_batch(paths: Sequence[Path], pipeline: Callable) -> np.ndarray:
    from zoogate.images import open_rgb

    return np.stack([pipeline(open_rgb(p)) for p in paths])


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
             identity: BuildIdentity | None = None) -> EvalResult:
    """Run every image of `dataset` through a loaded Runner; top-5 per image, bounded memory.

    Partial results go to `state_file` every `save_every` batches (default: about every SAVE_EVERY_IMAGES
    images) and whenever the loop stops early (KeyboardInterrupt, a runner or image error). With
    ``resume=True`` a matching saved state is continued; the final numbers equal an uninterrupted run's
    (batches keep their boundaries); a saved state of another build (``identity``, by default the runner's:
    see zoogate.identity) is refused with BuildMismatch. 1001-class outputs (index 0 = background) are
    detected from the first batch; labels are then compared shifted by +1. ``observe(first_index, logits)``
    sees each computed batch's logits (not resumed ones). Only (n, 5) class indices are kept, never the logits.
    """
    if batch_size < 1:
        raise ZoogateError(f"batch size must be >= 1, got {batch_size}")
    items = dataset.items
    n = len(items)
    identity = identity or run_identity(runner, model, spec if pipeline is None else None, dataset)
    meta = _state_meta(identity, dataset, batch_size)
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

    pipeline = pipeline or _pipeline(spec)
    starts = list(range(resumed, n, batch_size))
    bar = _progress(n, resumed, f"{model or 'model'} {meta['runner']} bs{batch_size}", progress)
    done = saved = resumed

    def save() -> None:
        nonlocal saved
        if state_path is not None and done > saved:
            save_state(state_path, meta, top5[:done], nonfinite[:done], num_classes)
            saved = done

    def load(lo: int):
        return pool.submit(_load_batch, [it.path for it in items[lo:lo + batch_size]], pipeline) if lo < n else None

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoogate-decode")   # decode while the runner runs
    pending = None
    try:
        pending = load(starts[0]) if starts else None
        for i, lo in enumerate(starts):
            batch = pending.result()
            pending = load(lo + batch_size)
            logits = runner.infer(batch)
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
        if pending is not None:
            pending.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        save()                 # whatever was computed, interrupted or not
        if bar is not None:
            bar.close()

    if num_classes is None:
        raise ZoogateError("the dataset is empty: nothing was evaluated", dataset.root)
    if num_classes == 1001:
        notes.append(describe_classes(num_classes))
    return EvalResult(model=model, runner=meta["runner"], batch_size=batch_size, dataset=dataset.describe(),
                      fingerprint=dataset.fingerprint(), labels=dataset.labels, top5=top5, num_classes=num_classes,
                      nonfinite_rows=int(nonfinite.sum()), resumed_from=resumed, notes=notes, identity=identity)


# ---------------------------------------------------------------- a generated labelled set (CI without ImageNet)

@dataclass
class GeneratedSet:
    dataset: LabelledSet
    reference: EvalResult            # the fp32 reference run that made the labels
    candidates: int                  # images generated to find len(dataset) unambiguous ones


CANDIDATE_SURPLUS = 1.25             # generated per wanted image and round (about 1 in 6 is too close to call)
CANDIDATE_ROUNDS = 4


def label_generated_set(root, reference_runner, spec: Preprocess, n: int, *, model: str = "", seed: int = 0,
                        batch_size: int = 8) -> GeneratedSet:
    """Write `n` generated images in the exact ImageNet layout, labelled with the reference's top-1.

    The labels come from the live path itself: candidates are written in the ImageNet layout and run through
    ``evaluate`` (reader, preprocessing, runner, top-k) with the reference runner. Candidates whose reference
    top-1 beats the runner-up by less than the tolerance `generated_label_margin` are left out (their label
    would be a coin toss for any backend that reorders float sums), as are 1001-class images whose top-1 is
    the background class. The kept files are written again, byte for byte, as the final set.
    """
    import shutil

    margin = baselines.tolerance("generated_label_margin").value
    root = Path(root)
    staging = root / ".candidates"
    kept: list[tuple[bytes, np.ndarray]] = []
    num_classes = None
    tried = 0
    for rnd in range(CANDIDATE_ROUNDS):
        want = n - len(kept)
        count = -(-int(want * CANDIDATE_SURPLUS) // batch_size) * batch_size
        jpegs = generated_jpegs(count, seed=seed + tried)
        tried += count
        candidates = write_imagenet_layout(staging / f"round{rnd}", jpegs, [0] * count)
        clear = np.zeros(count, dtype=bool)

        def observe(lo: int, logits: np.ndarray) -> None:
            top2 = np.sort(logits, axis=1)[:, -2:]
            usable = (top2[:, 1] - top2[:, 0] >= margin) & np.isfinite(logits).all(axis=1)
            usable &= np.argmax(logits, axis=1) >= class_shift(logits.shape[1])
            clear[lo:lo + len(logits)] = usable

        run = evaluate(reference_runner, candidates, spec, batch_size, progress=False, model=model, observe=observe)
        num_classes = run.num_classes
        kept += [(jpegs[j], run.top5[j]) for j in np.flatnonzero(clear)[:want]]
        if len(kept) >= n:
            break
    shutil.rmtree(staging, ignore_errors=True)
    if len(kept) < n:
        raise RuntimeError(f"only {len(kept)} of {tried} generated images have a reference top-1 margin >= "
                           f"{margin}: the reference model is too flat to label a set")
    top5 = np.stack([t for _, t in kept]).astype(np.int16)
    labels = (top5[:, 0].astype(np.int64) - class_shift(num_classes)).tolist()
    dataset = write_imagenet_layout(root, [j for j, _ in kept], labels)
    reference = EvalResult(model=model, runner=getattr(reference_runner, "name", "reference"), batch_size=batch_size,
                           dataset=dataset.describe(), fingerprint=dataset.fingerprint(), labels=dataset.labels,
                           top5=top5, num_classes=num_classes,
                           notes=[f"labels = reference top-1 through the live path; {n} of {tried} generated "
                                  f"images kept (top-1 margin >= {margin})"],
                           identity=run_identity(reference_runner, model, spec, dataset))
    return GeneratedSet(dataset, reference, tried)


# ---------------------------------------------------------------- gates

def _pp(fraction: float) -> float:
    return fraction * 100.0


def documented_gate(model: str, summary: AccuracySummary, check: str = "top1", row: str | None = None, *,
                    runner: str = "-", bs: int | None = None, full_size: int = IMAGENET_VAL_SIZE) -> GateRecord:
    """Measured top-1/top-5 against the documented row (reference row by default)."""
    if check not in ("top1", "top5"):
        raise ValueError(f"check must be top1 or top5, got {check!r}")
    k = 1 if check == "top1" else 5
    mb = baselines.model(model)
    r = mb.row(row)
    documented = r.top1 if k == 1 else r.top5
    tol = baselines.tolerance(f"{check}_abs_pp")
    confidence = baselines.tolerance("wilson_confidence").value
    measured = _pp(summary.accuracy(k))
    details = {"n": summary.n, "hits": summary.hits[k - 1], "row": r.id, "classes_assumed": summary.classes_assumed,
               "nonfinite_rows": summary.nonfinite_rows}
    if r.num_classes and r.num_classes != summary.num_classes:
        details["class_count_note"] = (f"row {r.id} documents {r.num_classes} classes, the outputs have "
                                       f"{summary.num_classes}")
    if r.informational:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=measured,
                          baseline=documented, source=r.source, tolerance=str(tol),
                          reason=f"baseline row {r.id} is informational ({r.framework}): it documents no inference "
                                 f"{check} a run can be gated against; claim another row", runner=runner, bs=bs,
                          details=details)
    if documented is None:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=measured,
                          baseline=None, source=r.source, tolerance=str(tol),
                          reason=f"baseline row {r.id} documents no {check}: the claim cannot be checked",
                          runner=runner, bs=bs, details=details)
    if summary.n == 0:
        return GateRecord(gate="accuracy", check=check, model=model, status=INCONCLUSIVE, measured=None,
                          baseline=documented, source=r.source, tolerance=str(tol), reason="no images were scored",
                          runner=runner, bs=bs, details=details)
    if summary.n >= full_size:
        diff = measured - documented
        ok = abs(diff) <= tol.value + _ROUNDING_PP
        reason = (f"{check} {measured:.3f} % on all {summary.n} images vs documented {documented:g} % "
                  f"(row {r.id}): diff {diff:+.3f} pp, allowed +/-{tol.value:g} pp")
        details.update(diff_pp=diff, allowed_pp=tol.value)
        return GateRecord(gate="accuracy", check=check, model=model, status=PASS if ok else FAIL, measured=measured,
                          baseline=documented, source=r.source, tolerance=str(tol), reason=reason, runner=runner,
                          bs=bs, details=details)
    lo, hi = (_pp(v) for v in wilson_interval(summary.hits[k - 1], summary.n, confidence))
    wide_lo, wide_hi = max(0.0, lo - tol.value), min(100.0, hi + tol.value)
    ok = wide_lo - _ROUNDING_PP <= documented <= wide_hi + _ROUNDING_PP
    max_width = baselines.tolerance("accuracy_interval_max_pp")
    reason = (f"{check} {measured:.3f} % on a subset of {summary.n} images: Wilson {confidence:.0%} interval "
              f"[{lo:.3f}, {hi:.3f}] %, widened by +/-{tol.value:g} pp to [{wide_lo:.3f}, {wide_hi:.3f}] %, "
              f"{'contains' if ok else 'excludes'} documented {documented:g} % (row {r.id})")
    details.update(interval_pp=[lo, hi], widened_pp=[wide_lo, wide_hi], confidence=confidence, subset=True)
    status = PASS if ok else FAIL
    if ok and wide_hi - wide_lo > max_width.value + _ROUNDING_PP:
        status = INCONCLUSIVE
        needed = images_to_decide(documented / 100.0, confidence, (max_width.value - 2 * tol.value) / 100.0)
        reason += (f"; but that interval spans {wide_hi - wide_lo:.1f} pp, wider than {max_width.value:g} pp "
                   f"({max_width.name}): too few images to tell"
                   + (f" (about {needed} would decide it)" if needed else ""))
        details.update(images_to_decide=needed)
    return GateRecord(gate="accuracy", check=check, model=model, status=status, measured=measured,
                      baseline=documented, source=r.source, tolerance=f"{tol}; Wilson {confidence:g}; {max_width}",
                      reason=reason, runner=runner, bs=bs, details=details)


def images_to_decide(p: float, confidence: float, width: float) -> int | None:
    """Images for a Wilson interval of about ``width`` (fraction) at accuracy ``p``: the normal
    approximation, enough to say how far a subset is from a verdict. None when no sample size would do."""
    from statistics import NormalDist

    if width <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return int(math.ceil((2 * z) ** 2 * max(p * (1 - p), 1e-4) / width ** 2))


def reference_gate(model: str, measured: EvalResult | AccuracySummary, reference: EvalResult | AccuracySummary, *,
                   runner: str = "-", bs: int | None = None, reference_name: str = "PyTorch fp32") -> GateRecord:
    """MLPerf-style: measured top-1 >= reference_agreement_top1 x the fp32 reference's top-1, same images."""
    tol = baselines.tolerance("reference_agreement_top1")
    if isinstance(measured, EvalResult) and isinstance(reference, EvalResult) \
            and measured.fingerprint != reference.fingerprint:
        raise ZoogateError(f"reference run is over another image set ({reference.dataset}) than the measured one "
                           f"({measured.dataset})")
    m = measured.summary() if isinstance(measured, EvalResult) else measured
    ref = reference.summary() if isinstance(reference, EvalResult) else reference
    details = {"n": m.n, "reference_n": ref.n, "reference": reference_name,
               "reference_top1": _pp(ref.top1), "classes_assumed": m.classes_assumed}
    if m.n != ref.n:
        raise ZoogateError(f"measured run has {m.n} images, the reference run {ref.n}: not the same set")
    if isinstance(measured, EvalResult) and isinstance(reference, EvalResult):
        same = measured.predictions == reference.predictions
        details["per_image_top1_agreement"] = float(same.mean()) if len(same) else None
        details["disagreeing_images"] = int((~same).sum())
        details["reference_notes"] = list(reference.notes)
    if ref.hits[0] == 0:
        return GateRecord(gate="accuracy", check="top1_vs_reference", model=model, status=INCONCLUSIVE,
                          measured=_pp(m.top1), baseline=0.0, source=reference_name, tolerance=str(tol),
                          reason=f"the {reference_name} reference scores 0 top-1 hits: nothing to agree with",
                          runner=runner, bs=bs, details=details)
    floor = _pp(ref.top1) * tol.value
    rec = at_least("accuracy", "top1_vs_reference", model, _pp(m.top1), floor, tolerance_text=str(tol),
                   source=f"{reference_name} reference run, same {m.n} images", runner=runner, bs=bs, unit=" %",
                   baseline=_pp(ref.top1))
    rec.reason = (f"top-1 {_pp(m.top1):.3f} % vs {reference_name} reference {_pp(ref.top1):.3f} % on the same "
                  f"{m.n} images: {'>=' if rec.passed else '<'} floor {floor:.3f} % "
                  f"({tol.value:.0%} of the reference)")
    rec.details.update(details)
    return rec


def label_offset_gate(model: str, summary: AccuracySummary, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    """Fail when labels shifted by one class give a much higher top-1 than the labels as scored."""
    tol = baselines.tolerance("label_offset_margin_pp")
    as_scored = _pp(summary.top1)
    shifted = {d: _pp(h / summary.n) if summary.n else 0.0 for d, h in summary.offset_top1.items()}
    details = {"offset_top1_pp": {f"{d:+d}": v for d, v in shifted.items()}, "classes_assumed": summary.classes_assumed,
               "n": summary.n}
    if not shifted or summary.n == 0:
        return GateRecord(gate="accuracy", check="label_offset", model=model, status=INCONCLUSIVE, measured=as_scored,
                          baseline=None, source="", tolerance=str(tol), reason="no offsets were counted",
                          runner=runner, bs=bs, details=details)
    d, best = max(shifted.items(), key=lambda kv: kv[1])
    if max(as_scored, best) < tol.value:
        return GateRecord(gate="accuracy", check="label_offset", model=model, status=INCONCLUSIVE, measured=as_scored,
                          baseline=best, source="label offsets -1/+1", tolerance=str(tol),
                          reason=f"top-1 is {as_scored:.3f} % as scored and at most {best:.3f} % with the labels "
                                 f"shifted: neither reaches {tol.value:g} pp, so these outputs cannot show whether the labels "
                                 "are offset", runner=runner, bs=bs, details=details)
    if best - as_scored >= tol.value:
        reason = (f"labels look off by {d:+d}: top-1 is {as_scored:.3f} % as scored ({summary.classes_assumed}) "
                  f"but {best:.3f} % with every label {d:+d}. A 1000- vs 1001-class (background at index 0) "
                  "mix-up, or 1-based labels?")
        status = FAIL
    else:
        reason = (f"top-1 {as_scored:.3f} % as scored ({summary.classes_assumed}); labels shifted by "
                  + ", ".join(f"{dd:+d}: {v:.3f} %" for dd, v in sorted(shifted.items()))
                  + f" (a shift would need to win by {tol.value:g} pp)")
        status = PASS
    return GateRecord(gate="accuracy", check="label_offset", model=model, status=status, measured=as_scored,
                      baseline=best, source="label offsets -1/+1", tolerance=str(tol), reason=reason, runner=runner,
                      bs=bs, details=details)


def skip_no_imagenet(model: str, check: str, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    return GateRecord(gate="accuracy", check=check, model=model, status=SKIP, reason=NO_IMAGENET, runner=runner, bs=bs)


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
    from zoogate.architecture import class_count_gate

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
    except _STATE_UNREADABLE:
        return None
    if not isinstance(meta, dict) or differences(BuildIdentity.from_dict(meta.get("identity")), identity):
        return None
    if (meta.get("done") != len(dataset) or len(top5) != len(dataset) or meta.get("num_classes") is None
            or "batch_size" not in meta):
        return None
    _validate_state_meta(meta, path)
    _validate_state_arrays(top5, nonfinite, meta["num_classes"], path)
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
                  progress: bool = True, computed: Sequence[EvalResult] = ()) -> EvalResult:
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
                      resume=resume, progress=progress, model=model, identity=expected)
    if refused:
        result.notes.append("computed for this build; saved reference runs of other builds not used: "
                            + "; ".join(refused))
    return result


def build_identity_gate(model: str, refusal: ZoogateError, *, runner: str = "-", bs: int | None = None) -> GateRecord:
    """FAIL: saved state of another build was offered (a --resume of another build's partial results)."""
    return GateRecord(gate="accuracy", check="build_identity", model=model, status=FAIL, reason=str(refusal),
                      runner=runner, bs=bs, details={"differences": list(getattr(refusal, "differences", []))})


def resume_gate(model: str, resumed: EvalResult, uninterrupted: EvalResult, *, runner: str = "-",
                bs: int | None = None) -> GateRecord:
    """A resumed run of the same build must have resumed something and equal an uninterrupted run, image by image."""
    same = resumed.top5.shape == uninterrupted.top5.shape and bool(np.array_equal(resumed.top5, uninterrupted.top5))
    builds = differences(resumed.identity, uninterrupted.identity) if uninterrupted.identity else ["unknown"]
    ok = same and resumed.resumed_from > 0 and not builds
    reason = (f"resumed {resumed.resumed_from} of {resumed.n} images from saved partial results of the same build; "
              f"top-5 of every image {'equals' if same else 'DIFFERS from'} an uninterrupted run's")
    return GateRecord(gate="accuracy", check="build_identity", model=model, status=PASS if ok else FAIL,
                      measured=resumed.resumed_from, baseline=resumed.n, reason=reason, runner=runner, bs=bs,
                      details={"identity": resumed.identity.to_dict() if resumed.identity else None})
