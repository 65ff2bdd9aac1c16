"""First-divergence bisect: where in the graph an ONNX candidate leaves its reference.

Both graphs get every intermediate tensor marked as an output (Polygraphy's ``ModifyOutputs`` with
``MARK_ALL``), run on the same batch in ONNX Runtime (CPU), and are compared tensor by tensor in the
reference's topological order. A reference tensor is found in the candidate by name, else by the node that
produces it (same node name, same output slot: fp16 conversions and QDQ insertions keep node names). A
tensor diverges when its normalised error, max |candidate - reference| / max |reference|, exceeds the
candidate precision's named tolerance (``bisect_<precision>``), or when it holds Inf/NaN the reference does
not. The first divergent node is reported with its op type, inputs and outputs and error figures, how the
error grows downstream, and, when the candidate feeds that node from a node the reference does not have
(an inserted reshape, a transpose), that inserted node. In a QDQ (int8) candidate a tensor is compared as
the graph carries it downstream, after its QuantizeLinear -> DequantizeLinear pair (``_carried``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoogate import baselines
from zoogate.errors import ZoogateError

Runtime = Callable[[Any, np.ndarray], dict]   # (an ONNX ModelProto with every tensor an output, batch) -> tensors
PRECISION_PLUMBING = {"Cast", "QuantizeLinear", "DequantizeLinear"}   # inserted by fp16/int8 conversion, not faults
MAX_TENSORS = 400          # compared per bisect: bounds time and memory (iresnet200 has ~370 node outputs)


@dataclass
class TensorError:
    tensor: str
    node: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    max_abs: float
    mean_abs: float
    normalised: float             # max_abs / max |reference|
    cosine: float | None
    nonfinite: int                # Inf/NaN values in the candidate where the reference is finite
    diverged: bool


def _beyond(value: float, limit: float) -> str:
    """``value`` with the digits that tell it from ``limit`` (0.2004 beyond 0.2 is not printed "0.2")."""
    for digits in (4, 6, 9):
        text = f"{value:.{digits}g}"
        if text != f"{limit:g}":
            return text
    return repr(value)


@dataclass
class BisectResult:
    reference: str
    candidate: str
    tolerance: str
    limit: float
    compared: list[TensorError] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)          # reference tensors the candidate lacks
    inserted: dict | None = None                                 # a candidate-only node feeding the first divergence
    capped: bool = False

    @property
    def first(self) -> TensorError | None:
        return next((t for t in self.compared if t.diverged), None)

    def summary(self) -> dict:
        first = self.first
        out = {"reference": self.reference, "candidate": self.candidate, "tolerance": self.tolerance,
               "tensors_compared": len(self.compared), "capped": self.capped,
               "first_divergence": asdict(first) if first else None}
        if first is not None:
            i = self.compared.index(first)
            out["downstream_normalised_error"] = [round(t.normalised, 6) for t in self.compared[i:i + 8]]
            out["final_normalised_error"] = self.compared[-1].normalised if self.compared else None
        if self.inserted:
            out["inserted_node"] = self.inserted
        return out

    def describe(self) -> str:
        first = self.first
        if first is None and self.capped:
            return (f"no divergence in the first {len(self.compared)} tensors, but the graph has more and they were "
                    f"not compared (cap {len(self.compared)}; raise it with --max-tensors): not a clean result")
        if first is None:
            return (f"no divergence: {len(self.compared)} tensors within {self.tolerance} (normalised error <= "
                    f"{self.limit:g})")
        grow = ", ".join(f"{t.normalised:.3g}" for t in self.compared[self.compared.index(first):][:6])
        why = (f"{first.nonfinite} Inf/NaN values where the reference is finite" if first.nonfinite else
               f"normalised {_beyond(first.normalised, self.limit)} > {self.limit:g} ({self.tolerance})")
        text = (f"first divergent node {first.node!r} ({first.op_type}; inputs {', '.join(first.inputs)}; output "
                f"{first.tensor}): {why}; max abs {first.max_abs:.4g}, mean abs {first.mean_abs:.4g} (finite "
                f"values); normalised error downstream: {grow}")
        if self.inserted:
            text += (f"; fed by {self.inserted['node']!r} ({self.inserted['op_type']}), a node the reference "
                     "does not have")
        return text

    def write(self, stem: str | os.PathLike) -> list[Path]:
        """The per-layer error profile: ``<stem>.json`` and a matplotlib plot ``<stem>.png``."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        doc = self.summary()
        doc["profile"] = [asdict(t) for t in self.compared]
        js = Path(f"{stem}.json")          # not with_suffix: a stem may hold dots (resnet50.a1_in1k)
        js.write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n", encoding="utf-8")
        return [js, self._plot(Path(f"{stem}.png"))]

    def _plot(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4))
        ys = [max(t.normalised, 1e-12) if math.isfinite(t.normalised) else 1e6 for t in self.compared]
        ax.semilogy(range(len(ys)), ys, ".-", lw=0.8, ms=3, label="normalised error")
        ax.axhline(self.limit, color="tab:red", ls="--", lw=1, label=self.tolerance)
        first = self.first
        if first is not None:
            i = self.compared.index(first)
            ax.axvline(i, color="tab:orange", lw=1)
            ax.annotate(f"{first.node} ({first.op_type})", (i, ys[i]), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)
        ax.set_xlabel("tensor (reference topological order)")
        ax.set_ylabel("max |cand - ref| / max |ref|")
        ax.set_title(f"{Path(self.candidate).name} vs {Path(self.reference).name}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def graph_precision(path: str | os.PathLike) -> str:
    """int8 when the graph holds QDQ nodes, fp16 when its float weights are float16, else fp32."""
    from onnx import TensorProto

    model = _load(path)
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return "int8"
    floats = [i.data_type for i in model.graph.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    return "fp16" if floats and floats.count(TensorProto.FLOAT16) > len(floats) / 2 else "fp32"


def attach(record, reference: str | os.PathLike, candidate: str | os.PathLike, batch: np.ndarray, *,
           precision: str, out_dir: str | os.PathLike | None = None, max_images: int = 2,
           runtime: Runtime | None = None):
    """On a failed agreement record of an ONNX-based candidate: the first divergent node in the failure
    message and ``details["bisect"]``; the profile written under ``out_dir`` (or a temp folder).
    ``runtime``: the candidate's backend runs the graph (see ``bisect``)."""
    import tempfile

    if not record.failed or (runtime is None and Path(reference).resolve() == Path(candidate).resolve()):
        return record
    result = bisect(reference, candidate, batch[:max_images], precision=precision, runtime=runtime)
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="zoogate-bisect-"))
    files = result.write(folder / f"bisect-{record.model}-{record.runner}".replace("/", "_"))
    record.details["bisect"] = {**result.summary(), "profile": [str(f) for f in files]}
    record.reason += f"; bisect: {result.describe()}"
    return record


def attach_to_runner(record, runner, reference: str | os.PathLike, batch: np.ndarray, *, precision: str | None = None,
                     out_dir: str | os.PathLike | None = None):
    """``attach`` for a loaded runner of an ONNX file (``runner.path``): its graph run by its own backend where
    it declares ``intermediate_outputs`` (OpenVINO), else by ONNX Runtime. Other runners are left as they are."""
    candidate = getattr(runner, "path", None)
    if not record.failed or not candidate or Path(candidate).suffix != ".onnx":
        return record
    precision = precision or getattr(runner, "precision", "fp32")
    try:
        return attach(record, reference, candidate, batch, precision=precision, out_dir=out_dir,
                      runtime=getattr(runner, "intermediate_outputs", None))
    except ZoogateError as exc:          # e.g. no measured bisect tolerance for the precision: say so, keep the FAIL
        record.reason += f"; bisect not run: {exc}"
        return record


def _load(path: str | os.PathLike):
    import onnx

    if not Path(path).is_file():
        raise ZoogateError("file not found", path)
    try:
        return onnx.load(str(path))
    except (OSError, ValueError) as exc:
        raise ZoogateError(f"cannot read the ONNX model ({exc})", path) from None
    except Exception as exc:               # protobuf's DecodeError: not an ONNX file
        raise ZoogateError(f"not an ONNX model ({type(exc).__name__})", path) from None


def _all_outputs(model, batch: np.ndarray, runtime: Runtime | None = None) -> dict[str, np.ndarray]:
    """Every tensor of ``model`` on ``batch``: the graph with all of them marked as outputs, run by ``runtime``
    (default ONNX Runtime's CPU EP)."""
    from polygraphy import constants
    from polygraphy.backend.onnx import ModifyOutputs

    marked = ModifyOutputs(model, outputs=constants.MARK_ALL, copy=True)()
    return (runtime or _onnxruntime)(marked, batch)


def every_tensor(path: str | os.PathLike, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the ONNX model at ``path`` on ``batch``, each kept in the type the graph gives it. For a
    float16 graph that is how a device stores its activations, where ONNX Runtime's CPU provider, lacking float16
    kernels for most ops, otherwise runs whole chains of them in float32 and never stores the float16 values."""
    return _all_outputs(_load(path), batch)


def _onnxruntime(marked, batch: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(marked.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = batch.astype(np.float16) if feed.type == "tensor(float16)" else batch.astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {feed.name: x})))


_LAST_REFERENCE: list = []      # (key, outputs) of the last reference run: fault rows bisect against one export


def _reference_outputs(path: str | os.PathLike, model, batch: np.ndarray) -> dict[str, np.ndarray]:
    """The reference's tensors on ``batch``, reused while the same file (path, size, mtime) and batch come back."""
    import hashlib

    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, batch.dtype.str, batch.shape,
           hashlib.blake2b(np.ascontiguousarray(batch).tobytes(), digest_size=16).hexdigest())
    if not _LAST_REFERENCE or _LAST_REFERENCE[0][0] != key:
        _LAST_REFERENCE[:] = [(key, _all_outputs(model, batch))]
    return _LAST_REFERENCE[0][1]


def _error(ref: np.ndarray, cand: np.ndarray) -> tuple[float, float, float, float | None, int]:
    r = np.asarray(ref).ravel()
    c = np.asarray(cand).ravel()
    if r.dtype.kind != "f" or r.dtype.itemsize > 4 or c.dtype != r.dtype:
        r, c = r.astype(np.float64), c.astype(np.float64)
    ref_ok, cand_ok = np.isfinite(r), np.isfinite(c)
    bad = int((~cand_ok & ref_ok).sum())
    both = None if ref_ok.all() and cand_ok.all() else ref_ok & cand_ok      # the common case: all finite
    rr, cc = (r, c) if both is None else (r[both], c[both])
    diff = np.abs(cc - rr, dtype=np.float64) if rr.dtype != np.float64 else np.abs(cc - rr)
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    finite_ref = r if ref_ok.all() else r[ref_ok]
    scale = float(np.abs(finite_ref).max()) if finite_ref.size else 0.0
    normalised = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    rr64, cc64 = rr.astype(np.float64, copy=False), cc.astype(np.float64, copy=False)
    nr, nc = float(np.dot(rr64, rr64)) ** 0.5, float(np.dot(cc64, cc64)) ** 0.5
    cosine = float(np.dot(rr64, cc64) / (nr * nc)) if nr > 0 and nc > 0 else None
    return max_abs, mean_abs, normalised, cosine, bad


def bisect(reference: str | os.PathLike, candidate: str | os.PathLike, batch: np.ndarray, *,
           precision: str = "fp32", max_tensors: int = MAX_TENSORS, runtime: Runtime | None = None) -> BisectResult:
    """Compare every intermediate tensor of ``candidate`` with ``reference`` on ``batch`` (NCHW float32).

    ``runtime`` runs the candidate (a backend's ``Runner.intermediate_outputs``, e.g. OpenVINO at its inference
    precision); the reference always runs in ONNX Runtime. With a runtime the candidate may be the reference file."""
    try:
        tol = baselines.tolerance(f"bisect_{precision}")
    except ZoogateError:
        raise ZoogateError(f"no bisect tolerance for {precision} yet: add a measured bisect_{precision} to "
                           "baselines/tolerances.toml, or pass --precision fp32|fp16") from None
    ref_model, cand_model = _load(reference), _load(candidate)
    ref_out = _reference_outputs(reference, ref_model, batch)
    cand_out = _all_outputs(cand_model, batch, runtime)
    cand_nodes = {n.name: n for n in cand_model.graph.node if n.name}
    cand_producer = {o: n for n in cand_model.graph.node for o in n.output}
    cand_consumers: dict[str, list] = {}
    for n in cand_model.graph.node:
        for i in n.input:
            cand_consumers.setdefault(i, []).append(n)
    ref_tensors = ({o for n in ref_model.graph.node for o in n.output} | {i.name for i in ref_model.graph.input}
                   | {i.name for i in ref_model.graph.initializer})
    result = BisectResult(reference=str(reference), candidate=str(candidate), tolerance=str(tol), limit=tol.value)
    for node in ref_model.graph.node:
        if node.op_type == "Constant":
            continue
        for slot, name in enumerate(node.output):
            if name not in ref_out or ref_out[name].dtype.kind != "f":
                continue
            if len(result.compared) >= max_tensors:
                result.capped = True
                return result
            cand_name = name if name in cand_out else None
            if cand_name is None and node.name in cand_nodes and slot < len(cand_nodes[node.name].output):
                cand_name = cand_nodes[node.name].output[slot]
            if cand_name == name or cand_name not in ref_tensors:
                cand_name = _carried(cand_name, cand_consumers, cand_out)
            got = cand_out.get(cand_name) if cand_name else None
            if got is None or got.shape != ref_out[name].shape:
                result.unmatched.append(name)
                continue
            max_abs, mean_abs, normalised, cosine, bad = _error(ref_out[name], got)
            diverged = bad > 0 or normalised > tol.value
            result.compared.append(TensorError(tensor=name, node=node.name or name, op_type=node.op_type,
                                               inputs=list(node.input), outputs=list(node.output), max_abs=max_abs,
                                               mean_abs=mean_abs, normalised=normalised, cosine=cosine,
                                               nonfinite=bad, diverged=diverged))
            if diverged and result.first is result.compared[-1]:       # this tensor is the first divergence
                result.inserted = _inserted_feeder(cand_producer.get(cand_name), cand_producer, ref_tensors)
    return result


def _carried(name: str | None, consumers: dict, outputs: dict) -> str | None:
    """The tensor a QDQ graph carries downstream for ``name``: the DequantizeLinear output of the one
    QuantizeLinear -> DequantizeLinear pair that follows it, else ``name`` itself.

    ONNX Runtime's quantizer folds a Relu that follows a Conv into the activation's quantization (a uint8 zero
    point of 0 clips the negatives) and gives the Conv's raw output the Relu's tensor name: that raw tensor is
    the Conv's output, the dequantized one is the Relu's. A Conv output found through its node under another
    reference tensor's name is therefore compared raw (the caller's check), every other tensor as carried.
    """
    quantize = [n for n in consumers.get(name, ()) if n.op_type == "QuantizeLinear"]
    if len(quantize) != 1:
        return name
    dequantize = [n for n in consumers.get(quantize[0].output[0], ()) if n.op_type == "DequantizeLinear"]
    if len(dequantize) == 1 and dequantize[0].output[0] in outputs:
        return dequantize[0].output[0]
    return name


def _inserted_feeder(node, producer: dict, ref_tensors: set) -> dict | None:
    """The candidate-only node that feeds ``node`` (an input the reference graph has no tensor for), if any."""
    if node is None:
        return None
    for name in node.input:
        if name and name not in ref_tensors and name in producer:
            feeder = producer[name]
            if feeder.op_type in PRECISION_PLUMBING:
                continue
            return {"node": feeder.name or name, "op_type": feeder.op_type, "inputs": list(feeder.input),
                    "outputs": list(feeder.output)}
    return None
