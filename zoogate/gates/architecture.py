"""Architecture gates (gate="architecture"): parameter count, FLOPs, input/output shapes, class count, and
the runner contract's output check (a loaded runner returns float32 (N, num_classes), all finite).

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one image at the documented input
size: it counts 2 x multiply-accumulates of convolutions and matrix products (the GEMM FLOPs) and
nothing else -- no BatchNorm, activations, pooling or additions. The documents counted another way,
hence the named relative tolerance ``gflops_rel``.

``diff_value``: a moved parameter count or FLOPs figure is listed; the status change carries any regression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from zoogate import baselines
from zoogate.gates._diff import number
from zoogate.record import FAIL, PASS, SKIP, GateRecord, within

if TYPE_CHECKING:        # torch is imported by the gates that run a module, not by importing them
    from torch import nn

    from hardware.base import Runner

FLOPS_COUNTED = "2 x MACs of conv/matmul (torch.utils.flop_counter), batch 1, eval mode"


def params_gate(name: str, module: nn.Module) -> GateRecord:
    from zoogate.models import count_params_m

    mb = baselines.model(name)
    measured = round(count_params_m(module), 6)
    if mb.documented_implementation:
        tol = baselines.tolerance("params_exact_m")
        rec = within("architecture", "params_m", name, measured, mb.params_m, abs_tol=tol.value,
                     tolerance_text=f"{tol} ({tol.why})", source=mb.source, unit=" M")
    else:
        tol = baselines.tolerance("params_framework_rel")
        rec = within("architecture", "params_m", name, measured, mb.params_m, rel_tol=tol.value,
                     tolerance_text=f"{tol} ({tol.why})", source=mb.source, unit=" M")
        rec.reason += f"; framework module ({mb.implementation}) differs from the documented count by design"
    return rec


def count_gflops(module: nn.Module, input_size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module.eval()(torch.zeros(1, 3, input_size, input_size, device=_device(module)))
    return counter.get_total_flops() / 1e9


def _device(module: nn.Module):
    """Where the module's parameters are: counting and shape checks run there (the meta device: shapes only)."""
    return next(module.parameters()).device


def flops_gate(name: str, module: nn.Module) -> GateRecord:
    mb = baselines.model(name)
    tol = baselines.tolerance("gflops_rel")
    measured = round(count_gflops(module, mb.input_size), 4)
    rec = within("architecture", "gflops", name, measured, mb.gflops, rel_tol=tol.value,
                 tolerance_text=f"{tol} ({tol.why})", source=mb.source, unit=" G")
    rec.details["counted"] = FLOPS_COUNTED
    rec.reason += f"; counted: {FLOPS_COUNTED}"
    return rec


def io_gate(name: str, module: nn.Module, batch_size: int = 2) -> GateRecord:
    """The documented input (N, 3, S, S) float32 is accepted and gives (N, num_classes) float32 logits."""
    import torch

    mb = baselines.model(name)
    want = (batch_size, mb.num_classes)
    with torch.no_grad():
        out = module.eval()(torch.zeros(batch_size, 3, mb.input_size, mb.input_size, device=_device(module)))
    got = tuple(out.shape)
    ok = got == want and out.dtype == torch.float32
    return GateRecord(gate="architecture", check="io_shape", model=name, status=PASS if ok else FAIL,
                      measured=f"{got} {out.dtype}", baseline=f"{want} torch.float32", source=mb.source,
                      tolerance="exact",
                      reason=f"input (N, 3, {mb.input_size}, {mb.input_size}) -> output {got}, expected {want}")


def class_count_gate(name: str, num_outputs: int) -> GateRecord:
    mb = baselines.model(name)
    note = " (index 0 = background)" if mb.background_class else ""
    ok = num_outputs == mb.num_classes
    return GateRecord(gate="architecture", check="num_classes", model=name, status=PASS if ok else FAIL,
                      measured=num_outputs, baseline=mb.num_classes, source=mb.source, tolerance="exact",
                      reason=f"{num_outputs} output classes vs documented {mb.num_classes}{note}")


def onnx_io_gates(name: str, onnx_path) -> list[GateRecord]:
    """For a user-supplied ONNX file: declared input spatial size and output class count."""
    import onnx

    mb = baselines.model(name)
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    dims = lambda vi: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]
    in_dims, out_dims = dims(graph.input[0]), dims(graph.output[0])
    spatial_ok = in_dims[1:] == [3, mb.input_size, mb.input_size]
    records = [
        GateRecord(gate="architecture", check="io_shape", model=name, status=PASS if spatial_ok else FAIL,
                   measured=str(in_dims), baseline=f"[N, 3, {mb.input_size}, {mb.input_size}]", source=mb.source,
                   tolerance="exact", reason=f"ONNX input {graph.input[0].name} declares {in_dims}")
    ]
    classes = out_dims[-1] if out_dims and isinstance(out_dims[-1], int) else None
    if classes is None:
        records.append(
            GateRecord(gate="architecture", check="num_classes", model=name, status=SKIP, measured=str(out_dims),
                       baseline=mb.num_classes, source=mb.source, tolerance="exact",
                       reason="output class dimension is symbolic in the ONNX graph")
        )
    else:
        records.append(class_count_gate(name, classes))
    return records


def check_output_shape(runner: Runner, batch: np.ndarray, *, model: str, num_classes: int) -> GateRecord:
    """One full batch -> float32 (N, num_classes), every value finite."""
    try:
        out = runner.infer(batch)
    except Exception as exc:     # a runner crash is a contract failure, reported as one
        return GateRecord(gate="architecture", check="output_shape", model=model, status=FAIL, runner=runner.name,
                          bs=runner.batch_size, measured=type(exc).__name__,
                          reason=f"infer({len(batch)} images): the runner raised {type(exc).__name__}: {exc}")
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
    return GateRecord(gate="architecture", check="output_shape", model=model, status=PASS if ok else FAIL,
                      runner=runner.name, bs=runner.batch_size, measured=f"{tuple(out.shape)} {out.dtype}",
                      baseline=f"{want} float32", reason=reason, details={"background_class": runner.background_class})


def diff_value(old: GateRecord, new: GateRecord) -> tuple | None:
    """(old, new, False, note) when a numeric measurement (params_m, gflops, num_classes) moved."""
    a, b = number(old.measured), number(new.measured)
    if a is None or b is None:
        return None
    return a, b, False, f"{old.check} {a:.6g} -> {b:.6g} (information: the gate's status decides)"
