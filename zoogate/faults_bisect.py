"""Fault-matrix rows whose agreement failure must name the planted node (zoogate.bisect).

Each row edits the primary model's ONNX export at one node, runs the agreement gate, and attaches the
first-divergence bisect; ``details["planted_node"]`` is the node the bisect has to name
(suites/test_fault_matrix.py checks it). The controls run the same flow without the fault.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoogate.faults_primary import PRIMARY, PrimaryModel, fp32_agreement, scratch
from zoogate.record import GateRecord

FP16_OVERFLOW_SCALE = 3e4       # a middle conv's weights x this: finite in float32, beyond 65504 in float16


def _edited(name: str, edit) -> tuple[Path, str]:
    """The primary export with ``edit(model) -> planted node name`` applied. Saved in the cache under a name
    made of the export's and the edit's, so derived builds (the fp16 conversion) are cached once."""
    import onnx

    from zoogate import cache
    from zoogate.files import write_atomic

    source = PrimaryModel.onnx()
    model = onnx.load(str(source))
    planted = edit(model)
    blob = model.SerializeToString()
    path = cache.root() / "faults" / f"{source.stem}-{name}.onnx"
    if not (path.is_file() and path.stat().st_size == len(blob) and path.read_bytes() == blob):
        write_atomic(path, lambda fh: fh.write(blob))      # rewritten only when the edit made other bytes
    return path, planted


def _conv_at(model, position: float):
    """The conv at ``position`` (0 = the first, 0.5 = the middle) of the graph's convs."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    return convs[min(int(position * len(convs)), len(convs) - 1)]


def _scale_weight(model, node, factor: float) -> None:
    from onnx import numpy_helper

    init = next(i for i in model.graph.initializer if i.name == node.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))


def _bisected(record: GateRecord, reference: Path, candidate: Path, planted: str, precision: str) -> GateRecord:
    from zoogate.bisect import attach

    record.details["planted_node"] = planted
    return attach(record, reference, candidate, PrimaryModel.images(), precision=precision, out_dir=scratch("bisect-"))


def perturbed_conv(position: float = 0.5, factor: float = 1.01) -> GateRecord:
    """One conv's weights scaled by ``factor`` (the conv at ``position`` of the graph's convs, 0 = the first):
    bisect must name that Conv."""
    def edit(model):
        node = _conv_at(model, position)
        _scale_weight(model, node, factor)
        return node.name

    path, planted = _edited(f"conv{position:g}-x{factor:g}", edit)
    record = fp32_agreement(PrimaryModel.ort_runner(4, path), f"onnxruntime+{factor - 1:+.0%}-conv")
    return _bisected(record, PrimaryModel.onnx(), path, planted, "fp32")


def perturbed_middle_conv(factor: float = 1.01) -> GateRecord:
    return perturbed_conv(0.5, factor)


def transposed_reshape(plant: bool = True) -> GateRecord:
    """NHWC memory reinterpreted as NCHW by an inserted Transpose + Reshape after a middle activation."""
    from onnx import helper

    def edit(model):
        relus = [n for n in model.graph.node if n.op_type == "Relu"]
        act = relus[len(relus) // 2]
        src = act.output[0]
        if not plant:
            return act.name
        names = (f"{src}/planted_nhwc", f"{src}/planted_shape", f"{src}/planted_nhwc_as_nchw")
        nodes = [helper.make_node("Transpose", [src], [names[0]], name="planted/Transpose", perm=[0, 2, 3, 1]),
                 helper.make_node("Shape", [src], [names[1]], name="planted/Shape"),
                 helper.make_node("Reshape", [names[0], names[1]], [names[2]], name="planted/NHWCAsNCHW/Reshape")]
        for node in model.graph.node:
            node.input[:] = [names[2] if i == src else i for i in node.input]
        where = list(model.graph.node).index(act) + 1
        for k, node in enumerate(nodes):
            model.graph.node.insert(where + k, node)
        return nodes[-1].name

    path, planted = _edited("transposed-reshape" if plant else "transposed-reshape-control", edit)
    record = fp32_agreement(PrimaryModel.ort_runner(4, path), "onnxruntime+NHWC-reshape")
    return _bisected(record, PrimaryModel.onnx(), path, planted, "fp32")


def fp16_layer_overflow(scale: float = FP16_OVERFLOW_SCALE) -> GateRecord:
    """A middle conv whose activations pass float16's range: the fp16 build's first Inf must be named."""
    from zoogate import fp16
    from zoogate.gates.agreement import agreement_gate

    from onnx import numpy_helper

    def edit(model):
        node = _conv_at(model, 0.5)
        _scale_weight(model, node, scale)
        for init in model.graph.initializer:      # weights float16-rounded (clamped into its range, as the
            w = numpy_helper.to_array(init)       # converter does): the reference differs from the fp16 build
            if w.dtype == np.float32:             # only where activations are stored in float16
                rounded = np.clip(w, -fp16.FP16_MAX, fp16.FP16_MAX).astype(np.float16).astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(rounded, init.name))
        return node.name

    import onnx

    from zoogate.bisect import every_tensor

    reference, planted = _edited(f"fp32-fp16weights-clamped-conv-x{scale:g}", edit)
    candidate = fp16.convert(reference)
    images = PrimaryModel.images()
    output = onnx.load(str(candidate), load_external_data=False).graph.output[0].name
    with np.errstate(over="ignore", invalid="ignore"):
        ref_logits = PrimaryModel.ort_runner(4, reference).infer(images[:4])
        cand_logits = every_tensor(candidate, images[:4])[output].astype(np.float32)   # activations stored in fp16
    record = agreement_gate(PRIMARY, "onnxruntime-fp16", 4, ref_logits, cand_logits, "fp16",
                            source=f"the same float16-rounded weights computed in float32 (conv {planted} x {scale:g}); "
                                   f"the fp16 build with every activation stored in float16, as on a device")
    return _bisected(record, reference, candidate, planted, "fp16")
