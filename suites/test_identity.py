"""Build identities (zoogate.identity): nothing measured on one build is reused for another.

Each reuse point is shown refusing saved state of another build and taking saved state of the same build:
partial results of a live evaluation (--resume), fp32 reference runs, golden sets, host fps baselines, and
the keys of the calibration and export caches. The runners are real (ONNX Runtime on tiny graphs at the
primary model's input size, the torch runner) or planted stand-ins that say what they loaded.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from hardware.base import Runner
from hardware.onnxruntime_runner import OnnxRuntimeRunner
from hardware.torch_runner import TorchRunner
from zoogate import accuracy, baselines, cache, datasets, identity, throughput
from zoogate.gates.accuracy import build_identity_gate, resume_gate
from zoogate.gates.throughput import fps_regression_gate
from zoogate.errors import ZoogateError
from zoogate.faults_reuse import class0_onnx
from zoogate.planted_runners import InterruptedRunner
from zoogate.identity import IN_ARTIFACT, NOT_APPLICABLE, BuildIdentity, BuildMismatch, differences
from zoogate.plugin.accuracy import REFERENCE_RUNNER, AccuracyOptions, LiveEvaluations
from zoogate.record import PASS, SKIP

MODEL = "iresnet50"
SPEC = baselines.model(MODEL).preprocess
SIZE = baselines.model(MODEL).input_size
IMAGES, BS = 6, 2


def _build(**changes) -> BuildIdentity:
    base = dict(model=MODEL, artifact="sha256:" + "a" * 64, weights=IN_ARTIFACT, runner="onnxruntime",
                options={"precision_mode": "force_fp32"}, precision="fp32", preprocess=SPEC.describe(),
                dataset="0123456789abcdef")
    return BuildIdentity(**{**base, **changes})


# ---------------------------------------------------------------- BuildIdentity itself

def test_identity_round_trips_through_json():
    build = _build(sources={"artifact": "/models/x.onnx"})
    assert BuildIdentity.from_json(build.to_json()) == build
    assert BuildIdentity.from_dict(json.loads(json.dumps(build.to_dict()))).sources == build.sources
    assert BuildIdentity.from_dict(build.to_dict()).digest() == build.digest()
    for garbage in (None, [], {"model": "x"}, {**build.to_dict(), "options": [1]}, {**build.to_dict(), "model": 3}):
        assert BuildIdentity.from_dict(garbage) is None
    assert BuildIdentity.from_json("{not json") is None


def test_differences_name_each_field_saved_then_now():
    saved, now = _build(), _build(artifact="sha256:" + "b" * 64, weights="sha256:" + "c" * 64)
    assert differences(saved, saved) == []
    assert differences(saved, now) == [f"artifact: saved sha256:{'a' * 12}.., now sha256:{'b' * 12}..",
                                       f"weights: saved {IN_ARTIFACT}, now sha256:{'c' * 12}.."]
    assert differences(saved, _build(options={"precision_mode": "allow_fp32_to_fp16"})) == [
        "options: saved precision_mode=force_fp32, now precision_mode=allow_fp32_to_fp16"]
    assert saved.digest() != now.digest()
    assert differences(saved, now, ("model", "runner")) == []                 # only the fields asked for


def test_unknown_fields_never_match_and_sources_are_not_compared():
    unknown = _build(artifact=None)
    assert not unknown.reusable and _build().reusable
    assert differences(unknown, unknown) == ["artifact: saved unknown, now unknown"]   # None != None
    assert differences(_build(sources={"artifact": "/a"}), _build(sources={"artifact": "/b"})) == []
    assert differences(_build(options={"a": 1, "b": 2}), _build(options={"b": 2, "a": 1})) == []
    assert differences(None, _build())[0].startswith("build identity: saved none recorded")
    assert _build(dataset=NOT_APPLICABLE).reusable


def test_file_digest_is_computed_once_per_file_state(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"first")
    calls = []
    real = cache.sha256_file
    monkeypatch.setattr(cache, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    first = identity.file_digest(path)
    assert first == "sha256:" + hashlib.sha256(b"first").hexdigest()
    assert identity.file_digest(path) == first and len(calls) == 1            # memoised
    path.write_bytes(b"second")
    os.utime(path, ns=(1, 1))                                                  # new size and mtime: recomputed
    assert identity.file_digest(path) != first and len(calls) == 2
    other = tmp_path / "vdsp.json"
    other.write_text("{}")
    together = identity.files_digest([path, other])
    other.write_text('{"Mean": 1}')
    assert identity.files_digest([path, other]) != together


# ---------------------------------------------------------------- runners say what they loaded

def _pooled_onnx(path, seed: int = 0, class0: bool = False):
    """A tiny classifier at the primary model's input size: global average pool, then a fixed linear layer."""
    if class0:
        return class0_onnx(path)
    rng = np.random.default_rng(seed)
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["class"])], "pooled",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("class", TensorProto.FLOAT, ["batch", 1000])],
        [numpy_helper.from_array(rng.standard_normal((3, 1000)).astype(np.float32) * 5, "w"),
         numpy_helper.from_array(rng.standard_normal(1000).astype(np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    return {"correct": _pooled_onnx(folder / "correct.onnx"), "class0": _pooled_onnx(folder / "class0.onnx", class0=True)}


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    jpegs = datasets.generated_jpegs(IMAGES, seed=6060)
    return datasets.write_imagenet_layout(tmp_path_factory.mktemp("set"), jpegs, [i % 3 for i in range(IMAGES)])


def test_onnxruntime_runner_names_the_file_it_loaded(graphs):
    runner = OnnxRuntimeRunner().load(graphs["correct"], BS)
    assert runner.artifact_id == "sha256:" + cache.sha256_file(graphs["correct"])
    assert runner.artifact_path == str(graphs["correct"])
    assert OnnxRuntimeRunner().load(graphs["class0"], BS).artifact_id != runner.artifact_id
    ident = identity.of_runner(runner, model=MODEL)
    assert ident.reusable and ident.weights == IN_ARTIFACT and ident.precision == "fp32"


def test_torch_runner_names_its_weights(zoo):
    from zoogate import weights

    loaded = zoo.model(MODEL)
    assert TorchRunner().load(loaded, BS).artifact_id == loaded.weights_identity
    assert loaded.weights_identity == weights.weights_identity(MODEL)     # without building the model
    assert loaded.weights_identity.startswith("calibrated, seed 0, ") and loaded.weights_id in loaded.weights_identity

    import torch

    bare = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten())
    first = TorchRunner().load(bare, BS).artifact_id
    assert first.startswith("sha256:") and TorchRunner().load(bare, BS).artifact_id == first
    with torch.no_grad():
        bare[0].weight[0, 0] += 1.0
    assert TorchRunner().load(bare, BS).artifact_id != first


def test_a_runner_that_does_not_say_what_it_loaded_can_reuse_nothing():
    class Silent(Runner):
        @classmethod
        def available(cls):
            return True, ""

        def load(self, artifact, batch_size):
            return self

        def _infer(self, batch):
            return np.zeros((len(batch), 1000), np.float32)

    ident = identity.of_runner(Silent().load(None, 1), model=MODEL)
    assert ident.artifact is None and ident.weights is None and not ident.reusable


# ---------------------------------------------------------------- dataset fingerprints cover content

def test_fingerprint_is_stable_for_the_same_files_and_changes_with_content(tmp_path):
    jpegs = datasets.generated_jpegs(3, seed=61)
    ds = datasets.write_imagenet_layout(tmp_path / "a", jpegs, [1, 2, 3])
    assert datasets.open_dataset(tmp_path / "a").fingerprint() == ds.fingerprint()
    copy = datasets.write_imagenet_layout(tmp_path / "b", jpegs, [1, 2, 3])       # same bytes elsewhere
    assert copy.fingerprint() == ds.fingerprint()
    swapped = datasets.write_imagenet_layout(tmp_path / "c", [jpegs[1], jpegs[0], jpegs[2]], [1, 2, 3])
    assert swapped.fingerprint() != ds.fingerprint()                             # same names and labels


def test_large_sets_are_fingerprinted_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FINGERPRINT_CONTENT_BYTES", 0)
    ds = datasets.write_imagenet_layout(tmp_path, datasets.generated_jpegs(2, seed=62), [4, 5])
    before = ds.fingerprint()
    assert datasets.open_dataset(tmp_path).fingerprint() == before
    os.utime(ds.items[0].path, ns=(10**18, 10**18))
    assert ds.fingerprint() != before


# ---------------------------------------------------------------- partial results (--resume)

def _options(resume: bool) -> AccuracyOptions:
    return AccuracyOptions(imagenet="x", limit=None, resume=resume, results=None, labels=None, baseline_row=None,
                           models=(MODEL,))


def _interrupted(live: LiveEvaluations, runner, dataset) -> None:
    with pytest.raises(KeyboardInterrupt):
        live.run(MODEL, InterruptedRunner(runner, batches=1), dataset, BS)


def test_resume_with_a_class0_build_is_refused_naming_the_artifact(graphs, image_set, tmp_path):
    """The reviewed case: a correct build interrupted, then --resume with a graph that answers class 0."""
    correct = OnnxRuntimeRunner().load(graphs["correct"], BS)
    _interrupted(LiveEvaluations(_options(False), state_dir=tmp_path), correct, image_set)
    (saved,) = tmp_path.glob("*.npz")
    kept = saved.read_bytes()
    broken = OnnxRuntimeRunner().load(graphs["class0"], BS)
    with pytest.raises(BuildMismatch) as refusal:
        LiveEvaluations(_options(True), state_dir=tmp_path).run(MODEL, broken, image_set, BS)
    message = str(refusal.value)
    assert "\n" not in message and message.startswith(f"{saved}: saved partial results are from another build: ")
    assert f"artifact: saved {identity.show('artifact', correct.artifact_id)}, " \
           f"now {identity.show('artifact', broken.artifact_id)}" in message
    assert refusal.value.differences == ["artifact: saved " + identity.show("artifact", correct.artifact_id)
                                         + ", now " + identity.show("artifact", broken.artifact_id)]
    rec = build_identity_gate(MODEL, refusal.value, runner="onnxruntime", bs=BS)
    assert rec.failed and rec.check == "build_identity" and rec.reason == message
    assert saved.read_bytes() == kept                                          # nothing of it was touched
    # without --resume the class-0 build scores itself from scratch; the other build's file is never read
    fresh = LiveEvaluations(_options(False), state_dir=tmp_path).run(MODEL, broken, image_set, BS)
    assert fresh.resumed_from == 0 and (fresh.top5[:, 0] == 0).all() and saved.read_bytes() == kept


def test_resume_by_the_same_build_continues_to_the_uninterrupted_numbers(graphs, image_set, tmp_path):
    _interrupted(LiveEvaluations(_options(False), state_dir=tmp_path), OnnxRuntimeRunner().load(graphs["correct"], BS),
                 image_set)
    same = OnnxRuntimeRunner().load(graphs["correct"], BS)                     # a fresh load of the same file
    resumed = LiveEvaluations(_options(True), state_dir=tmp_path).run(MODEL, same, image_set, BS)
    uninterrupted = accuracy.evaluate(same, image_set, SPEC, BS, progress=False, model=MODEL)
    assert resumed.resumed_from == BS and resumed.identity == uninterrupted.identity
    assert resume_gate(MODEL, resumed, uninterrupted).status == PASS


def test_resume_refuses_the_same_file_of_other_weights(graphs, image_set, tmp_path):
    correct = OnnxRuntimeRunner().load(graphs["correct"], BS)
    correct.weights_identity = "sha256:" + "1" * 64
    _interrupted(LiveEvaluations(_options(False), state_dir=tmp_path), correct, image_set)
    again = OnnxRuntimeRunner().load(graphs["correct"], BS)
    again.weights_identity = "sha256:" + "2" * 64                               # same file, other provenance
    with pytest.raises(BuildMismatch, match=r"weights: saved sha256:111111111111\.\., now sha256:222222222222\.\."):
        LiveEvaluations(_options(True), state_dir=tmp_path).run(MODEL, again, image_set, BS)


def test_an_explicit_state_file_of_another_build_is_refused(graphs, image_set, tmp_path):
    state = tmp_path / "partial.npz"
    with pytest.raises(KeyboardInterrupt):
        accuracy.evaluate(InterruptedRunner(OnnxRuntimeRunner().load(graphs["correct"], BS), 1), image_set, SPEC, BS,
                          state_file=state, progress=False, model=MODEL)
    with pytest.raises(BuildMismatch, match="artifact: saved"):
        accuracy.evaluate(OnnxRuntimeRunner().load(graphs["class0"], BS), image_set, SPEC, BS, state_file=state,
                          resume=True, progress=False, model=MODEL)
    with pytest.raises(BuildMismatch, match="preprocess: saved .*, now unknown"):   # a pipeline not of the spec
        accuracy.evaluate(OnnxRuntimeRunner().load(graphs["correct"], BS), image_set, SPEC, BS, state_file=state,
                          resume=True, progress=False, model=MODEL, pipeline=lambda img: np.zeros((3, SIZE, SIZE)))


def test_a_finished_run_of_another_build_does_not_block_resume(graphs, image_set, tmp_path):
    LiveEvaluations(_options(False), state_dir=tmp_path).run(MODEL, OnnxRuntimeRunner().load(graphs["correct"], BS),
                                                             image_set, BS)
    fresh = LiveEvaluations(_options(True), state_dir=tmp_path).run(
        MODEL, OnnxRuntimeRunner().load(graphs["class0"], BS), image_set, BS)
    assert fresh.resumed_from == 0 and (fresh.top5[:, 0] == 0).all()           # nothing to resume: its own run


# ---------------------------------------------------------------- fp32 reference runs

class Reference(Runner):
    """A stand-in fp32 reference named like the torch runner; ``weights`` says which weights it holds."""

    name = REFERENCE_RUNNER

    def __init__(self, weights: str) -> None:
        super().__init__()
        self.weights_identity = self.artifact_id = weights
        self.runs = 0

    @classmethod
    def available(cls):
        return True, ""

    def load(self, artifact, batch_size):
        self.batch_size = batch_size
        return self

    def _infer(self, batch):
        self.runs += 1
        shift = int(self.weights_identity[-1], 16)      # other weights: other classes win
        logits = np.zeros((len(batch), 1000), np.float32)
        logits[np.arange(len(batch)), (np.arange(len(batch)) + shift) % 1000] = 1.0
        return logits


def test_a_saved_reference_of_other_weights_is_not_used(image_set, tmp_path):
    stale = "sha256:" + "0" * 63 + "7"
    this = "sha256:" + "0" * 64
    earlier = LiveEvaluations(_options(False), lambda m: Reference(stale).load(None, BS), state_dir=tmp_path)
    old = earlier.reference(MODEL, image_set)                                   # saved by an earlier session
    assert old.identity.weights == stale and len(list(tmp_path.glob(f"{MODEL}-{REFERENCE_RUNNER}-*.npz"))) == 1
    runner = Reference(this).load(None, BS)
    now = LiveEvaluations(_options(False), lambda m: runner, state_dir=tmp_path).reference(MODEL, image_set)
    assert now.identity.weights == this and runner.runs == IMAGES // BS        # computed for this build
    assert not np.array_equal(now.top5, old.top5)
    assert "saved reference runs of other builds not used" in now.notes[-1] and "weights: saved sha256:" in now.notes[-1]
    again = Reference(this).load(None, BS)
    reused = LiveEvaluations(_options(False), lambda m: again, state_dir=tmp_path).reference(MODEL, image_set)
    assert again.runs == 0 and np.array_equal(reused.top5, now.top5)           # this build's: reused
    assert "saved run of this build" in reused.notes[0]


def test_a_session_result_of_another_build_is_not_the_reference(image_set, tmp_path):
    live = LiveEvaluations(_options(False), lambda m: Reference("sha256:" + "0" * 64).load(None, BS),
                           state_dir=tmp_path)
    other = live.run(MODEL, Reference("sha256:" + "0" * 63 + "3").load(None, BS), image_set, BS, persist=False)
    assert live.reference(MODEL, image_set) is not other


# ---------------------------------------------------------------- host fps baselines

class Sleepless(Runner):
    name = "sleepless"

    def __init__(self, artifact: str | None) -> None:
        super().__init__()
        self.artifact_id = artifact

    @classmethod
    def available(cls):
        return True, ""

    def load(self, artifact, batch_size):
        self.batch_size = batch_size
        return self

    def _infer(self, batch):
        return np.zeros((len(batch), 10), np.float32)


def test_a_host_baseline_of_another_build_is_not_a_comparison(tmp_path):
    settings = throughput.MeasureSettings.from_baselines(warmup_steps=1, min_steps=3, min_duration_s=0.0)
    batches = throughput.split_batches(np.zeros((4, 3, 8, 8), np.float32), 2)
    fp = {**throughput.host_fingerprint(), "cpu": "identity test host"}

    def measured(artifact):
        return throughput.measure(Sleepless(artifact).load(None, 2), batches, model=MODEL, settings=settings)

    throughput.save_host_baseline("ident", [measured("sha256:" + "a" * 64)], storage=tmp_path, fingerprint=fp)
    saved = throughput.load_host_baseline("ident", storage=tmp_path, fingerprint=fp)
    entry = saved.get(MODEL, "sleepless", 2)["extra_info"]["identity"]
    assert BuildIdentity.from_dict(entry).artifact == "sha256:" + "a" * 64
    other = fps_regression_gate(measured("sha256:" + "b" * 64), saved)
    assert other.status == SKIP and other.reason.startswith(
        f"host baseline 'ident' was recorded for another build: artifact: saved sha256:{'a' * 12}.., "
        f"now sha256:{'b' * 12}..")
    assert fps_regression_gate(measured(None), saved).status == SKIP          # unknown never matches
    assert fps_regression_gate(measured("sha256:" + "a" * 64), saved).status != SKIP


# ---------------------------------------------------------------- calibration and export cache keys

def test_cache_keys_hold_what_decides_the_product():
    import PIL

    from zoogate import weights

    mb = baselines.model(MODEL)
    parts = weights._calibration_parts(mb, 0)
    assert parts["preprocess"] == mb.preprocess.describe() and parts["calibration"]["version"]
    assert parts["num_classes"] == mb.num_classes and parts["architecture"] == "zoogate:iresnet50"
    assert parts["images"] == {"numpy": np.__version__, "Pillow": PIL.__version__}
    assert cache.key(weights._calibration_parts(mb, 1)) != cache.key(parts)

    from zoogate.export import export_parts

    class Loaded:      # a LoadedModel's fields that decide the export
        def __init__(self, name, calibrated):
            self.baseline, self.weights_id, self.calibrated = baselines.model(name), "samecheckpoint", calibrated

    a, b = (export_parts(Loaded(n, False), "torchscript", 17, "dynamic", "image", "class")
            for n in ("inception_v3", "inception_v4"))
    assert cache.key(a) != cache.key(b)                      # one checkpoint file, two architectures
    calibrated = export_parts(Loaded("inception_v3", True), "torchscript", 17, "dynamic", "image", "class")
    assert "architecture" not in calibrated                  # the calibration key already holds it


def test_weights_identity_of_a_checkpoint_is_its_digest(tmp_path):
    from zoogate import weights

    path = tmp_path / "iresnet50.safetensors"
    path.write_bytes(b"not read, only hashed")
    assert weights.weights_identity(MODEL, path) == "sha256:" + cache.sha256_file(path)
    assert weights.weights_identity(MODEL, [str(tmp_path)]) == weights.weights_identity(MODEL, path)
    with pytest.raises(ZoogateError, match="weights file not found"):
        weights.weights_identity(MODEL, tmp_path / "missing.pth")
