"""The runner contract: what every backend must do, as checks that return GateRecords.

One implementation, used by the pytest contract suite (suites/test_runner_contract.py) for every
runner and by the self-tests that plant faulty runners. Each check calls the runner itself, so a
runner that misbehaves (shifted classes, logits that depend on batch-mates, a dropped or misaligned
tail) shows up as a FAIL record whose explanation says what was compared with what.

Checks (gate kind, check name):
- output shape and dtype (architecture, output_shape): (N, num_classes) float32, all finite;
- batch invariance (agreement, batch_invariance): an image's logits in a batch, in the batch
  reversed, alone and with other batch-mates agree within the named tolerance ``batch_invariance``;
- determinism (agreement, determinism): the same batch twice on one loaded runner;
- last partial batch (agreement, partial_batch): 2*bs-1 images give 2*bs-1 rows, and the tail rows
  equal the same images' rows in a full batch (``batch_invariance``);
- agreement with PyTorch eager (agreement, eager_agreement): through the comparator with the
  runner's tolerance (fp32_same_backend / fp32_cross_backend / fp16 / int8); against softmax(eager)
  for a runner whose ``outputs`` are probabilities.
"""

from __future__ import annotations

import numpy as np

from hardware.base import Runner, infer_all, reference_outputs
from zoogate.compare import agreement_gate
from zoogate.record import FAIL, PASS, SKIP, GateRecord

BATCH_INVARIANCE = "batch_invariance"
# run-to-run noise: fp32 backends are held to the same-backend tolerance, reduced precision to its own
DETERMINISM = {"fp32": "fp32_same_backend", "fp16": "determinism_reduced_precision",
               "int8": "determinism_reduced_precision"}


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


def check_output_shape(runner: Runner, batch: np.ndarray, *, model: str, num_classes: int) -> GateRecord:
    """One full batch -> float32 (N, num_classes), every value finite."""
    try:
        out = runner.infer(batch)
    except Exception as exc:     # a runner crash is a contract failure, reported as one
        return _runner_failed("architecture", "output_shape", model, runner, f"infer({len(batch)} images)", exc)
    want = (len(batch), num_classes)
    finite = bool(np.isfinite(out).all()) if out.dtype.kind == "f" else False
    ok = out.shape == want and out.dtype == np.float32 and finite
    problems = []
    if out.shape != want:
        problems.append(f"shape {out.shape} != {want}")
    if out.dtype != np.float32:
        problems.append(f"dtype {out.dtype} != float32")
    if not finite:
        problems.append(f"{int((~np.isfinite(out)).sum())} non-finite values")
    reason = "; ".join(problems) or f"{out.shape} float32, all finite"
    if runner.background_class:
        reason += " (background class at index 0, returned as-is)"
    return _rec("architecture", "output_shape", model, runner, PASS if ok else FAIL,
                measured=f"{tuple(out.shape)} {out.dtype}", baseline=f"{want} float32", reason=reason,
                details={"background_class": runner.background_class})


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
