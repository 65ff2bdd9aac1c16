"""The comparator: how far a candidate's outputs are from a reference's, and which statistic says so.

In the spirit of Polygraphy's output comparison, for classifier logits of shape (N, C) (any shape
works; the last axis is the class axis, the first the image axis; a 1-d array is one image).

Element rule (the same as numpy.isclose / Polygraphy, but with both bounds required to fail)::

    element i fails  <=>  |cand_i - ref_i| > atol  AND  |cand_i - ref_i| > rtol * |ref_i|

so a near-zero reference logit is judged by atol, not by an absurd relative error.

A comparison against a named tolerance (``zoogate.baselines.Tolerance``) PASSES only when all hold:

- ``elementwise``     no element fails the rule above;
- ``nan_count`` /     the candidate holds no NaN / no +-Inf (always a failure, whatever the tolerance;
  ``inf_count``       a non-finite reference is a broken reference and fails the same way);
- ``cosine``          the *minimum per-image* cosine similarity >= tol.cosine_min;
- ``top1_agreement``  the fraction of images whose argmax equals the reference's >= tol.top1_agreement_min.

``failing_statistics`` lists the names above that failed. ``top5_agreement`` is reported (mean
fraction of the reference's top-5 classes found in the candidate's top-5) but no tolerance bounds it.

Minimum tolerance to pass (elementwise rule only; each keeps the *other* bound of ``tol`` fixed)::

    min_atol_to_pass = max{ d_i : d_i > rtol*|r_i| }          (0 when that set is empty)
    min_rtol_to_pass = max{ d_i / |r_i| : d_i > atol }         (0 when empty; inf when some r_i == 0)

i.e. the smallest atol (resp. rtol) with which every element would pass given the same rtol (resp.
atol); any smaller value fails at least one element. Both are inf when the candidate is non-finite.
Without a tolerance (tol=None) the fixed bound is 0: min_atol_to_pass = max abs diff and
min_rtol_to_pass = max relative diff.

Statistics (max/mean/p99 abs, relative L2, cosine) are computed in float64 over the elements where
both sides are finite; NaN/Inf are counted separately, and an image holding one never agrees on
top-1/top-5. p99 abs is numpy's linearly interpolated 99th percentile of |cand - ref|. Cosine of two
all-zero images is 1, of an all-zero image against a non-zero one 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from zoogate import baselines
from zoogate.baselines import Tolerance
from zoogate.errors import ZoogateError


TOPK = 5
# Names used in failing_statistics (stable: tests and reports match on them).
ELEMENTWISE, NAN, INF, COSINE, TOP1 = "elementwise", "nan_count", "inf_count", "cosine", "top1_agreement"
STATISTICS = (ELEMENTWISE, NAN, INF, COSINE, TOP1)


@dataclass
class Comparison:
    """Everything the comparator measured. Per-image arrays are numpy arrays (``to_dict`` makes lists)."""

    shape: tuple[int, ...]
    names: tuple[str, str]
    tolerance: Tolerance | None
    max_abs: float
    mean_abs: float
    p99_abs: float
    rel_l2: float
    cosine: float                      # over all elements, flattened
    cosine_min: float                  # worst image
    cosine_per_image: np.ndarray
    top1_agreement: float              # fraction of images
    top1_per_image: np.ndarray         # bool per image
    top5_agreement: float              # mean overlap fraction
    top5_per_image: np.ndarray         # overlap fraction per image (0..1)
    worst_index: tuple[int, ...]       # element with the largest |cand - ref| (or the first non-finite candidate)
    worst_ref: float
    worst_cand: float
    nan_count: int                     # candidate
    inf_count: int                     # candidate
    ref_nan_count: int
    ref_inf_count: int
    min_atol_to_pass: float
    min_rtol_to_pass: float
    n_failing_elements: int
    n_elements: int
    passed: bool
    failing_statistics: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.top1_per_image)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tolerance"] = None if self.tolerance is None else str(self.tolerance)
        d["shape"] = list(self.shape)
        d["worst_index"] = list(self.worst_index)
        d["names"] = list(self.names)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = v.tolist()
        return d

    def summary(self) -> str:
        """One line: the headline numbers and, on failure, which statistics failed."""
        head = (f"max abs {_g(self.max_abs)}, cosine min {_cos(self.cosine_min)}, "
                f"top-1 {self.top1_per_image.sum()}/{self.n_images}, top-5 {self.top5_agreement:.1%}")
        if self.nan_count or self.inf_count:
            head = f"candidate has {self.nan_count} NaN and {self.inf_count} Inf; " + head
        if self.tolerance is None:
            return head
        if self.passed:
            return f"{head}: within {self.tolerance.name}"
        return f"FAILED {', '.join(self.failing_statistics)} ({head}) against {self.tolerance.name}"

    def report(self) -> str:
        """Multi-line text: every statistic, what it was held to, and a verdict naming what failed."""
        ref_name, cand_name = self.names
        tol = self.tolerance
        lines = [f"comparator: {cand_name} vs {ref_name}, shape {self.shape}"
                 + (f", tolerance {tol}" if tol else ", no tolerance")]
        if tol is not None:
            lines.append("  verdict     : " + ("PASS" if self.passed else
                                              "FAIL on " + ", ".join(self.failing_statistics)))
        mark = lambda name: "  <-- FAIL" if name in self.failing_statistics else ""  # noqa: E731
        w = ", ".join(str(i) for i in self.worst_index)
        nonfinite = bool(self.nan_count or self.inf_count or self.ref_nan_count or self.ref_inf_count)
        lines += [
            f"  max abs     : {_g(self.max_abs)}" + (" (over the finite elements)" if nonfinite else ""),
            f"  worst elem. : [{w}] {ref_name} {_g(self.worst_ref)}, {cand_name} {_g(self.worst_cand)}"
            + (" (first non-finite value)" if nonfinite else ""),
            f"  mean abs    : {_g(self.mean_abs)}",
            f"  p99 abs     : {_g(self.p99_abs)}",
            f"  relative L2 : {_g(self.rel_l2)}",
        ]
        if tol is not None:
            pct = self.n_failing_elements / self.n_elements if self.n_elements else 0.0
            lines.append(f"  elementwise : {self.n_failing_elements} of {self.n_elements} elements ({pct:.3%}) "
                         f"exceed both atol {_g(tol.atol)} and rtol {_g(tol.rtol)}*|ref|{mark(ELEMENTWISE)}")
            lines.append(f"  to pass     : atol >= {_g(self.min_atol_to_pass)} (rtol {_g(tol.rtol)} fixed) or "
                         f"rtol >= {_g(self.min_rtol_to_pass)} (atol {_g(tol.atol)} fixed)")
        else:
            lines.append(f"  to pass     : atol >= {_g(self.min_atol_to_pass)} (rtol 0) or "
                         f"rtol >= {_g(self.min_rtol_to_pass)} (atol 0)")
        worst_img = int(np.argmin(self.cosine_per_image)) if self.n_images else 0
        need = f", needs >= {_cos(tol.cosine_min)}" if tol else ""
        lines.append(f"  cosine      : {_cos(self.cosine)} overall, min {_cos(self.cosine_min)} "
                     f"(image {worst_img}){need}{mark(COSINE)}")
        differing = np.flatnonzero(~self.top1_per_image)
        need = f", needs >= {tol.top1_agreement_min:.2%}" if tol else ""
        lines.append(f"  top-1 agree : {int(self.top1_per_image.sum())}/{self.n_images} = {self.top1_agreement:.2%}"
                     + (f" (images differing: {_ilist(differing)})" if len(differing) else "")
                     + need + mark(TOP1))
        partial = np.flatnonzero(self.top5_per_image < 1.0)
        lines.append(f"  top-5 agree : {self.top5_agreement:.2%} of the reference's top-{TOPK} found"
                     + (f" (images with a different top-{TOPK} set: {_ilist(partial)})" if len(partial) else ""))
        lines.append(f"  NaN / Inf   : {cand_name} {self.nan_count} / {self.inf_count}, "
                     f"{ref_name} {self.ref_nan_count} / {self.ref_inf_count}"
                     + ("  <-- FAIL" if {NAN, INF} & set(self.failing_statistics) else ""))
        return "\n".join(lines)


def _g(v: float | None) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v) or v == 0:
        return str(v)
    return f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"


def _cos(v: float) -> str:
    """Cosines near 1 differ in the 8th+ digit: show 1 - cos too."""
    if not math.isfinite(v):
        return str(v)
    return f"{v:.8f}" + (f" (1-cos {1 - v:.1e})" if 0 < 1 - v < 1e-3 else "")


def _ilist(idx: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return f"[{shown}{', ...' if len(idx) > limit else ''}] ({len(idx)})"


def _as_float64(a, side: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise ZoogateError(f"{side} outputs: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, C) view: first axis images, everything else flattened into the class axis."""
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)


def _cosines(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two all-zero rows count as identical (1), one all-zero row as orthogonal (0)."""
    dot = np.einsum("ij,ij->i", r, c)
    nr, nc = np.linalg.norm(r, axis=1), np.linalg.norm(c, axis=1)
    denom = nr * nc
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.where((nr == 0) & (nc == 0), 1.0, 0.0))
    return np.clip(cos, -1.0, 1.0)


def _topk(a: np.ndarray, k: int) -> np.ndarray:
    # Stable sort on the negated values: ties go to the lower class index on both sides.
    return np.argsort(-a, axis=1, kind="stable")[:, :k]


def compare(reference, candidate, tol: Tolerance | str | None = None, *,
            names: Sequence[str] = ("reference", "candidate")) -> Comparison:
    """Compare candidate outputs against reference outputs (see the module docstring for every definition).

    ``tol`` is a Tolerance, a tolerance name from baselines/tolerances*.toml, or None (statistics only,
    ``passed`` is then True unless the candidate is non-finite). ``names`` labels the two sides in the report.
    Raises ZoogateError when the shapes differ or an array is empty.
    """
    if isinstance(tol, str):
        tol = baselines.tolerance(tol)
    if tol is not None and None in (tol.atol, tol.rtol, tol.cosine_min, tol.top1_agreement_min):
        raise ZoogateError(f"tolerance {tol.name!r} is not a comparator tolerance "
                           "(needs atol, rtol, cosine_min, top1_agreement_min)")
    names = (str(names[0]), str(names[1]))
    ref, cand = _as_float64(reference, names[0]), _as_float64(candidate, names[1])
    if ref.shape != cand.shape:
        raise ZoogateError(f"shape mismatch: {names[0]} {tuple(ref.shape)} vs {names[1]} {tuple(cand.shape)}")
    if ref.size == 0 or ref.ndim == 0:
        raise ZoogateError(f"nothing to compare: outputs have shape {tuple(ref.shape)}")

    cand_nan, cand_inf = np.isnan(cand), np.isinf(cand)
    ref_nonfinite = ~np.isfinite(ref)
    finite = ~(cand_nan | cand_inf | ref_nonfinite)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(cand - ref), 0.0)
    fd = diff[finite]
    any_finite = fd.size > 0
    max_abs = float(fd.max()) if any_finite else math.nan
    mean_abs = float(fd.mean()) if any_finite else math.nan
    p99_abs = float(np.percentile(fd, 99)) if any_finite else math.nan
    ref_norm = float(np.linalg.norm(ref[finite]))
    err_norm = float(np.linalg.norm(fd))
    rel_l2 = err_norm / ref_norm if ref_norm > 0 else (0.0 if err_norm == 0 else math.inf)

    nonfinite_cand = ~finite
    if nonfinite_cand.any():
        flat = int(np.flatnonzero(nonfinite_cand)[0])
    else:
        flat = int(np.argmax(diff))
    worst_index = tuple(int(i) for i in np.unravel_index(flat, ref.shape))
    worst_ref, worst_cand = float(ref[worst_index]), float(cand[worst_index])

    # Row statistics on zeros in place of non-finite values (they fail separately, by name).
    r2, c2 = _rows(np.where(finite, ref, 0.0)), _rows(np.where(finite, cand, 0.0))
    cos_img = _cosines(r2, c2)
    cos_all = float(_cosines(r2.reshape(1, -1), c2.reshape(1, -1))[0])
    top1_img = _topk(r2, 1)[:, 0] == _topk(c2, 1)[:, 0]
    rows_finite = _rows(finite).all(axis=1)
    top1_img &= rows_finite
    k = min(TOPK, r2.shape[1])
    tr, tc = _topk(r2, k), _topk(c2, k)
    top5_img = np.array([len(set(a) & set(b)) / k for a, b in zip(tr.tolist(), tc.tolist())]) * rows_finite

    atol = tol.atol if tol else 0.0
    rtol = tol.rtol if tol else 0.0
    abs_ref = np.abs(ref)
    fails = finite & (diff > atol) & (diff > rtol * abs_ref)
    need_atol = finite & (diff > rtol * abs_ref)
    min_atol = float(diff[need_atol].max()) if need_atol.any() else 0.0
    need_rtol = finite & (diff > atol)
    if need_rtol.any():
        with np.errstate(divide="ignore", over="ignore"):
            min_rtol = float(np.max(diff[need_rtol] / abs_ref[need_rtol]))
    else:
        min_rtol = 0.0
    if nonfinite_cand.any():
        min_atol = min_rtol = math.inf

    failing: list[str] = []
    if tol is not None and fails.any():
        failing.append(ELEMENTWISE)
    if cand_nan.any() or np.isnan(ref).any():
        failing.append(NAN)
    if cand_inf.any() or np.isinf(ref).any():
        failing.append(INF)
    if tol is not None:
        if not float(cos_img.min()) >= tol.cosine_min:
            failing.append(COSINE)
        if not float(top1_img.mean()) >= tol.top1_agreement_min:
            failing.append(TOP1)

    return Comparison(
        shape=tuple(ref.shape), names=names, tolerance=tol,
        max_abs=max_abs, mean_abs=mean_abs, p99_abs=p99_abs, rel_l2=rel_l2,
        cosine=cos_all, cosine_min=float(cos_img.min()), cosine_per_image=cos_img,
        top1_agreement=float(top1_img.mean()), top1_per_image=top1_img,
        top5_agreement=float(top5_img.mean()), top5_per_image=top5_img,
        worst_index=worst_index, worst_ref=worst_ref, worst_cand=worst_cand,
        nan_count=int(cand_nan.sum()), inf_count=int(cand_inf.sum()),
        ref_nan_count=int(np.isnan(ref).sum()), ref_inf_count=int(np.isinf(ref).sum()),
        min_atol_to_pass=min_atol, min_rtol_to_pass=min_rtol,
        n_failing_elements=int(fails.sum()), n_elements=int(ref.size),
        passed=not failing, failing_statistics=failing)
