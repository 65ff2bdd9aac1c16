"""Agreement gates (gate="agreement"): logits of one run against logits of another, through the comparator.

- ``agreement_gate``: any two sets of logits under a named tolerance (zoogate.compare does the statistics);
  measured = max abs diff, baseline 0 (exact agreement); the details carry the full comparator report.

The runner contract's agreement checks call the runner themselves, so a runner that misbehaves (shifted
classes, logits that depend on batch-mates, a dropped or misaligned tail) shows up as a FAIL record whose
explanation says what was compared with what (the output-shape check is an architecture gate):
- batch invariance (batch_invariance): an image's logits in a batch, in the batch reversed, alone and with
  other batch-mates agree within the named tolerance ``batch_invariance``;
- determinism (determinism): the same batch twice on one loaded runner;
- last partial batch (partial_batch): 2*bs-1 images give 2*bs-1 rows, and the tail rows equal the same
  images' rows in a full batch (``batch_invariance``);
- agreement with PyTorch eager (eager_agreement): with the runner's tolerance (fp32_same_backend /
  fp32_cross_backend / bf16 / fp16 / int8); against softmax(eager) for a runner whose ``outputs`` are
  probabilities.

``diff_value`` is the rule ``zoogate diff`` applies to agreement records: max abs up by more than the atol of
the record's tolerance, or top-1 agreement down beyond it, is a regression.
"""

from __future__ import annotations

import numpy as np

from typing import Sequence

from hardware.base import Runner, infer_all, reference_outputs
from zoogate import baselines
from zoogate.baselines import Tolerance
from zoogate.compare import compare
from zoogate.gates._diff import number, tolerance_named
from zoogate.record import FAIL, PASS, SKIP, GateRecord

BATCH_INVARIANCE = "batch_invariance"
# run-to-run noise: fp32 backends are held to the same-backend tolerance, reduced precision to its own
DETERMINISM = {"fp32": "fp32_same_backend", "fp16": "determinism_reduced_precision",
               "int8": "determinism_reduced_precision"}


def agreement_gate(model: str, runner: str, bs: int | None, reference, candidate, tol_name: str | Tolerance, *,
                   source: str = "", check: str = "logits",
                   names: Sequence[str] = ("reference", "candidate")) -> GateRecord:
    """The agreement gate: compare and turn the result into a GateRecord (gate="agreement").

    measured = max abs diff, baseline = 0.0 (exact agreement), tolerance = the named tolerance;
    details = the comparison as a dict plus ``report_text`` (the full report, shown on failure).
    ``source`` says where the reference came from (e.g. "PyTorch eager, calibrated weights <hash>").
    """
    tol = baselines.tolerance(tol_name) if isinstance(tol_name, str) else tol_name
    result = compare(reference, candidate, tol, names=names)
    details = result.to_dict()
    details["report_text"] = result.report()
    return GateRecord(gate="agreement", check=check, model=model, status=PASS if result.passed else FAIL,
                      measured=result.max_abs, baseline=0.0, source=source or names[0], tolerance=str(tol),
                      reason=result.summary(), runner=runner, bs=bs, details=details)


def _rec(gate: str, check: str, model: str, runner: Runner, status: str, **kw) -> GateRecord:
    return GateRecord(gate=gate, check=check, model=model, status=status, runner=runner.name, bs=runner.batch_size,
                      **kw)


def _needs_batch(check: str, model: str, runner: Runner) -> GateRecord | None:
    if (runner.batch_size or 1) < 2:
        return _rec("agreement", check, model, runner, SKIP,
                    reason=f"batch size {runner.batch_size} has no batch-mates and no partial batch: "
                           f"run with --bs 4 (or a list with a size >= 2)")
    return None


def _need_images(images: np.ndarray, n: int, check: str) -> None:
    if len(images) < n:
        raise ValueError(f"{check}: needs at least {n} images, got {len(images)}")


def _runner_failed(gate: str, check: str, model: str, runner: Runner, what: str, exc: Exception) -> GateRecord:
    return _rec(gate, check, model, runner, FAIL, measured=f"{type(exc).__name__}",
                reason=f"{what}: the runner raised {type(exc).__name__}: {exc}")


def check_batch_invariance(runner: Runner, images: np.ndarray, *, model: str,
                           tol: str = BATCH_INVARIANCE) -> GateRecord:
    """The first bs images as a full batch (the reference) against: the same batch reversed (position),
    its first and last image run alone (batch size), and image 0 with other batch-mates (images
    bs..2bs-2). Needs 2*bs-1 images."""
    skip = _needs_batch("batch_invariance", model, runner)
    if skip:
        return skip
    bs = runner.batch_size
    _need_images(images, 2 * bs - 1, "batch_invariance")
    first = images[:bs]
    try:
        in_batch = runner.infer(first)
        reversed_ = runner.infer(first[::-1].copy())[::-1]
        alone = np.concatenate([runner.infer(first[i:i + 1]) for i in (0, bs - 1)])
        other_mates = runner.infer(np.concatenate([first[:1], images[bs:2 * bs - 1]]))[:1]
    except Exception as exc:
        return _runner_failed("agreement", "batch_invariance", model, runner, "running the batches", exc)
    reference = np.concatenate([in_batch, in_batch[[0, bs - 1]], in_batch[:1]])
    candidate = np.concatenate([reversed_, alone, other_mates])
    record = agreement_gate(model, runner.name, bs, reference, candidate, tol, check="batch_invariance",
                            source=f"the first {bs} images as one batch through {runner.name}",
                            names=("in the batch", "reordered / alone / other mates"))
    record.details["rows"] = (f"rows 0..{bs - 1}: the batch reversed; {bs}, {bs + 1}: images 0 and {bs - 1} "
                              f"alone; {bs + 2}: image 0 with other batch-mates")
    return record


def check_determinism(runner: Runner, batch: np.ndarray, *, model: str, tol: str | None = None) -> GateRecord:
    """The same images twice through one loaded runner."""
    tol = tol or DETERMINISM.get(runner.precision, DETERMINISM["fp16"])
    try:
        first = infer_all(runner, batch)
        second = infer_all(runner, batch)
    except Exception as exc:
        return _runner_failed("agreement", "determinism", model, runner, "running the batch twice", exc)
    return agreement_gate(model, runner.name, runner.batch_size, first, second, tol, check="determinism",
                          source=f"first run of the same {len(batch)} images", names=("run 1", "run 2"))


def check_partial_batch(runner: Runner, images: np.ndarray, *, model: str, tol: str = BATCH_INVARIANCE) -> GateRecord:
    """2*bs-1 images in chunks of bs (the last chunk bs-1 images): every image gets exactly one row, in order,
    and the tail rows equal the same images' rows in a full batch."""
    skip = _needs_batch("partial_batch", model, runner)
    if skip:
        return skip
    bs = runner.batch_size
    n = 2 * bs - 1
    _need_images(images, n, "partial_batch")
    try:
        rows = infer_all(runner, images[:n])
    except Exception as exc:
        return _runner_failed("agreement", "partial_batch", model, runner,
                              f"{n} images at batch size {bs} (last batch {bs - 1} images)", exc)
    if rows.ndim != 2 or rows.shape[0] != n:
        return _rec("agreement", "partial_batch", model, runner, FAIL, measured=f"{rows.shape[0]} rows",
                    baseline=f"{n} rows",
                    reason=(f"{n} images at batch size {bs} gave {rows.shape[0]} output rows: the partial last "
                            f"batch ({bs - 1} images{', padded' if runner.static_batch else ''}) was "
                            f"{'dropped' if rows.shape[0] < n else 'returned with its padding'}"))
    try:
        full = runner.infer(images[bs - 1:n])     # image bs-1 then the tail: a full batch
    except Exception as exc:
        return _runner_failed("agreement", "partial_batch", model, runner, "the tail images in a full batch", exc)
    record = agreement_gate(model, runner.name, bs, full[1:], rows[bs:], tol, check="partial_batch",
                            source="the tail images inside a full batch",
                            names=("tail in a full batch", "tail as the partial last batch"))
    record.details["tail_images"] = bs - 1
    return record


def check_eager_agreement(runner: Runner, images: np.ndarray, reference: np.ndarray, *, model: str,
                          tol: str | None = None, source: str = "PyTorch eager fp32") -> GateRecord:
    """All images through the runner (chunks of bs) against PyTorch eager logits, via the comparator.

    A runner whose artifact has a background class (1001 outputs) compared with a 1000-class reference
    has column 0 dropped here (the contract suite is the caller that decides); a runner whose outputs
    are probabilities (``runner.outputs``) is compared with softmax(reference). The record says so.
    """
    try:
        candidate = infer_all(runner, images)
    except Exception as exc:
        return _runner_failed("agreement", "eager_agreement", model, runner, f"{len(images)} images", exc)
    reference, note = reference_outputs(runner, reference)
    if runner.background_class and candidate.shape[-1] == reference.shape[-1] + 1:
        candidate = candidate[:, 1:]
        note = "; ".join(filter(None, (note, "background column 0 dropped before comparing")))
    if candidate.shape != reference.shape:
        return _rec("agreement", "eager_agreement", model, runner, FAIL, measured=str(candidate.shape),
                    baseline=str(reference.shape), source=source,
                    reason=f"output shape {candidate.shape} cannot be compared with the reference's {reference.shape}")
    record = agreement_gate(model, runner.name, runner.batch_size, reference, candidate,
                            tol or runner.agreement_tolerance, check="eager_agreement", source=source,
                            names=("torch eager", runner.name))
    if record.status == FAIL and runner.outputs == "logits" and _looks_like_probabilities(candidate):
        note = "; ".join(filter(None, (note, "the runner's rows are non-negative and sum to 1: probabilities from "
                                             "a build with a softmax? (for vacc: --runner vacc:build=FILE.yaml)")))
    if note:
        record.details["note"] = note
        record.reason += f" ({note})"
    return record


def _looks_like_probabilities(outputs: np.ndarray) -> bool:
    rows = np.asarray(outputs, dtype=np.float64)
    return bool(rows.size) and bool((rows >= 0).all()) and bool(np.allclose(rows.sum(axis=-1), 1.0, atol=1e-2))


def diff_value(old: GateRecord, new: GateRecord) -> tuple | None:
    """(old, new, regression?, note) for the max abs and top-1 agreement an agreement record carries."""
    a, b = number(old.measured), number(new.measured)
    ta, tb = number(old.details.get("top1_agreement")), number(new.details.get("top1_agreement"))
    tol = tolerance_named(new.tolerance, "fp32_cross_backend")
    regression, notes = False, []
    if a is not None and b is not None:
        atol = tol.atol if tol and tol.atol is not None else 0.0
        regression |= b > a + atol
        notes.append(f"max abs {a:.3g} -> {b:.3g} (a regression is a rise beyond atol {atol:g} of "
                     f"{tol.name if tol else '-'})")
    if ta is not None and tb is not None:
        allowed = 1.0 - tol.top1_agreement_min if tol and tol.top1_agreement_min is not None else 0.0
        regression |= tb < ta - allowed - 1e-12
        notes.append(f"top-1 agreement {ta:.4f} -> {tb:.4f}")
    if not notes:
        return None
    return (a if a is not None else ta), (b if b is not None else tb), regression, "; ".join(notes)
