"""Fault-matrix rows for reuse across builds (zoogate.identity): a partial run resumed by another build, and an
fp32 reference computed with other weights, must never pass for this build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoogate import baselines
from zoogate.faults_primary import PRIMARY, PrimaryModel, scratch
from zoogate.planted_runners import InterruptedRunner
from zoogate.record import FAIL, GateRecord

REUSE_IMAGES, REUSE_BS = 4, 2


def _reuse_set():
    """REUSE_IMAGES generated JPEGs in the ImageNet layout, labelled with this build's top-1 through the live path."""
    from hardware.torch_runner import TorchRunner
    from zoogate import accuracy, datasets

    def make():
        root, jpegs = scratch(), datasets.generated_jpegs(REUSE_IMAGES, 4343)
        unlabelled = datasets.write_imagenet_layout(root, jpegs, [0] * REUSE_IMAGES)
        run = accuracy.evaluate(TorchRunner().load(PrimaryModel.loaded(), REUSE_BS), unlabelled,
                                baselines.model(PRIMARY).preprocess, REUSE_BS, progress=False, model=PRIMARY)
        return datasets.write_imagenet_layout(root, jpegs, run.predictions.tolist())

    return PrimaryModel.get("reuse-set", make)


def class0_onnx(path: Path) -> Path:
    """An ONNX classifier of the primary model's input that answers class 0 for every image."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = baselines.model(PRIMARY).input_size
    bias = np.zeros(1000, np.float32)
    bias[0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["class"])], "class0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["batch", 1000])],
        [numpy_helper.from_array(np.zeros((3, 1000), np.float32), "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def resumed_from_another_build(other_build: bool = True) -> GateRecord:
    """A correct build's live evaluation interrupted after one batch, then resumed (--resume) by a build that
    always answers class 0: it must be refused naming the artifact, never continued. Control: resumed by the
    same build (a fresh load of the same file), it continues to the uninterrupted numbers."""
    from hardware.onnxruntime_runner import OnnxRuntimeRunner
    from zoogate import accuracy
    from zoogate import partial_results
    from zoogate.gates import accuracy as accuracy_gates
    from zoogate.identity import BuildMismatch

    spec, dataset = baselines.model(PRIMARY).preprocess, _reuse_set()
    folder = scratch()
    correct = PrimaryModel.ort_runner(REUSE_BS)

    def live(runner, resume: bool) -> accuracy.EvalResult:     # what the pytest plugin's live_eval.run does
        identity = partial_results.run_identity(runner, PRIMARY, spec, dataset)
        state = partial_results.state_file_for(folder, identity, REUSE_BS)
        if resume and not state.is_file():
            accuracy.refuse_other_builds(folder, identity, REUSE_BS)
        return accuracy.evaluate(runner, dataset, spec, REUSE_BS, state_file=state, resume=resume, progress=False,
                                 model=PRIMARY, identity=identity)

    try:
        live(InterruptedRunner(correct, batches=1), resume=False)
    except KeyboardInterrupt:
        pass
    if other_build:
        broken = OnnxRuntimeRunner().load(class0_onnx(folder / "class0.onnx"), REUSE_BS)
        try:
            resumed = live(broken, resume=True)
        except BuildMismatch as refusal:
            return accuracy_gates.build_identity_gate(PRIMARY, refusal, runner="onnxruntime(class-0 graph)", bs=REUSE_BS)
        return accuracy_gates.resume_gate(PRIMARY, resumed, accuracy.evaluate(broken, dataset, spec, REUSE_BS,
                                                                        progress=False, model=PRIMARY),
                                    runner="onnxruntime(class-0 graph)", bs=REUSE_BS)
    same = OnnxRuntimeRunner().load(correct.path, REUSE_BS)
    uninterrupted = accuracy.evaluate(same, dataset, spec, REUSE_BS, progress=False, model=PRIMARY)
    return accuracy_gates.resume_gate(PRIMARY, live(same, resume=True), uninterrupted, runner="onnxruntime", bs=REUSE_BS)


def _other_weights():
    """A checkpoint of the primary model that disagrees with the calibrated weights on at least the first half
    of the reuse images: the classifier rows of their top-1 classes swapped with classes no image predicts."""
    import torch
    from safetensors.torch import save_file

    from zoogate import weights

    def make():
        loaded = PrimaryModel.loaded()
        classes = [int(it.label) for it in _reuse_set().items]
        spare = [c for c in range(loaded.baseline.num_classes) if c not in classes]
        head = weights.classifier(loaded.module, loaded.baseline.num_classes)
        name = next(n for n, m in loaded.module.named_modules() if m is head)
        state = {k: v.clone().contiguous() for k, v in loaded.module.state_dict().items()}
        with torch.no_grad():
            for c, s in zip(classes[:len(classes) // 2], spare):
                for key in (f"{name}.weight", f"{name}.bias"):
                    state[key][[c, s]] = state[key][[s, c]]
        path = scratch() / f"{PRIMARY}-other.safetensors"
        save_file(state, str(path))
        return weights.load_model(PRIMARY, path)

    return PrimaryModel.get("other-weights", make)


def reference_of_other_weights(other_weights: bool = True) -> GateRecord:
    """An earlier session saved a PyTorch fp32 reference run made with other weights, and the deployment under
    test was built from those same weights (a stale checkpoint): they agree with each other. This build's
    weights are the calibrated ones, so that saved reference must not be used; the reference is computed for
    this build and the deployment is judged against it. Control: a saved reference of this build is reused."""
    from hardware.torch_runner import TorchRunner
    from zoogate import accuracy
    from zoogate import partial_results
    from zoogate.gates import accuracy as accuracy_gates

    spec, dataset = baselines.model(PRIMARY).preprocess, _reuse_set()
    folder = scratch()
    deployed = _other_weights() if other_weights else PrimaryModel.loaded()
    earlier_session = TorchRunner().load(deployed, REUSE_BS)
    identity = partial_results.run_identity(earlier_session, PRIMARY, spec, dataset)
    # the earlier session's saved reference; the deployment built from the same weights scores the same
    # numbers (run eagerly here, to keep the row cheap)
    candidate = accuracy.evaluate(earlier_session, dataset, spec, REUSE_BS, progress=False, model=PRIMARY,
                                  state_file=partial_results.state_file_for(folder, identity, REUSE_BS), identity=identity)
    this_build = TorchRunner().load(PrimaryModel.loaded(), REUSE_BS)
    reference = accuracy.reference_run(folder, this_build, dataset, spec, model=PRIMARY, progress=False)
    label = f"deployment({'other' if other_weights else 'same'} weights)"
    record = accuracy_gates.reference_gate(PRIMARY, candidate, reference, runner=label, bs=REUSE_BS,
                                     reference_name="this build's PyTorch fp32")
    reused = any("saved run of this build" in note for note in reference.notes)
    if not other_weights and not reused:      # the control also proves the saved reference is taken
        record.status, record.reason = FAIL, "the saved reference run of this very build was not reused"
    return record
