"""Accuracy gates and live evaluation (zoogate.accuracy) with cheap stand-in runners.

Every gate is shown failing on the fault it exists for; the live loop is shown resuming after a kill with
the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import pytest

from hardware.base import Runner
from zoogate import baselines
from zoogate.accuracy import EvalResult, evaluate
from zoogate.generated_set import label_generated_set
from zoogate.gates.accuracy import NO_IMAGENET, documented_gate, label_offset_gate, reference_gate, skip_no_imagenet
from zoogate.partial_results import load_state, run_identity, state_meta
from zoogate.errors import ZoogateError
from zoogate.metrics import AccuracySummary
from zoogate.record import FAIL, INCONCLUSIVE, PASS, SKIP

SPEC = baselines.model("iresnet50").preprocess      # 224 px: the cheap pipeline
IMAGES = 22                                           # bs 4 -> 5 full batches and a partial one
BS = 4


class PooledLinearRunner(Runner):
    """A fixed random linear classifier on 4x4-pooled pixels: deterministic, cheap, image-dependent."""

    name = "pooled-linear"

    def __init__(self, num_classes: int = 1000, seed: int = 0, **_):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weights = rng.standard_normal((3 * 4 * 4, num_classes)) * 3.0
        self.calls = 0

    @classmethod
    def available(cls):
        return True, ""

    def load(self, artifact, batch_size):
        import hashlib

        self.batch_size = batch_size
        self.artifact_id = "pooled-linear sha256:" + hashlib.sha256(self.weights.tobytes()).hexdigest()
        return self

    def _infer(self, batch):
        self.calls += 1
        n, c, h, w = batch.shape
        pooled = batch[:, :, : h - h % 4, : w - w % 4].reshape(n, c, 4, h // 4, 4, w // 4).mean(axis=(3, 5))
        return pooled.reshape(n, -1) @ self.weights


class StaticPooledRunner(PooledLinearRunner):
    name = "pooled-linear-static"
    static_batch = True

    def _infer(self, batch):
        assert batch.shape[0] == self.batch_size, "a static runner must only ever see full batches"
        return super()._infer(batch)


class InterruptAfter(PooledLinearRunner):
    """Raises KeyboardInterrupt on its (k+1)-th batch, as Ctrl-C would."""

    def __init__(self, k: int, **kw):
        super().__init__(**kw)
        self.k = k

    def _infer(self, batch):
        if self.calls >= self.k:
            raise KeyboardInterrupt
        return super()._infer(batch)


class DropWrongColumn(PooledLinearRunner):
    """A 1001-class model whose deployment kept columns 0..999 (background in, class 999 out)."""

    def _infer(self, batch):
        return super()._infer(batch)[:, :1000]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """22 generated images in the ImageNet layout, labelled by the 1000-class stand-in."""
    runner = PooledLinearRunner().load(None, BS)
    return label_generated_set(tmp_path_factory.mktemp("gen1000"), runner, SPEC, IMAGES, batch_size=BS)


class RefusingRunner(PooledLinearRunner):
    """Fails when asked to infer: a labels-cache hit must not run the reference."""

    def _infer(self, batch):
        raise AssertionError("the reference ran: the cached labels were not used")


def test_generated_labels_are_cached_per_reference_build(tmp_path, monkeypatch):
    from zoogate import cache

    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    build = {"runner": "pooled-linear", "weights": "calibrated, seed 0"}
    first = label_generated_set(tmp_path / "a", PooledLinearRunner().load(None, BS), SPEC, 12, batch_size=BS,
                                reference_parts=build)
    again = label_generated_set(tmp_path / "b", RefusingRunner().load(None, BS), SPEC, 12, batch_size=BS,
                                reference_parts=build)
    assert again.dataset.fingerprint() == first.dataset.fingerprint()
    assert np.array_equal(again.reference.top5, first.reference.top5) and again.candidates == first.candidates
    with pytest.raises(AssertionError, match="the reference ran"):     # another reference build labels afresh
        label_generated_set(tmp_path / "c", RefusingRunner().load(None, BS), SPEC, 12, batch_size=BS,
                            reference_parts={**build, "weights": "sha256:other"})
    saved = next((tmp_path / "cache" / "labels").glob("*.npz"))
    with np.load(saved) as arrays:
        tampered = dict(arrays)
    tampered["top5"] = tampered["top5"][::-1].copy()
    with open(saved, "wb") as fh:
        np.savez(fh, **tampered)
    with pytest.raises(ZoogateError, match="do not match their digest"):
        label_generated_set(tmp_path / "d", RefusingRunner().load(None, BS), SPEC, 12, batch_size=BS,
                            reference_parts=build)


class FlatRunner(PooledLinearRunner):
    """Every class scores the same: a top-1 margin of exactly 0 on every image."""

    def _infer(self, batch):
        return np.zeros((len(batch), 1000), dtype=np.float32)


def test_the_margin_a_caller_asks_is_the_one_applied(tmp_path):
    """A calibration source asks margin 0 (its labels only balance its classes): flat logits still label every
    candidate, in one round (the named tolerance, 0.5, would keep none of them)."""
    kept = label_generated_set(tmp_path / "calib", FlatRunner().load(None, BS), SPEC, 8, batch_size=BS, margin=0.0)
    assert len(kept.dataset) == 8 and kept.candidates <= 8 * 2
    assert "top-1 margin >= 0.0" in kept.reference.notes[0]


def _run(runner, ds, **kw):
    return evaluate(runner.load(None, BS), ds, SPEC, BS, progress=False, model="iresnet50", **kw)


def test_generated_set_is_labelled_by_the_reference(labelled):
    result = _run(PooledLinearRunner(), labelled.dataset)
    assert result.n == IMAGES and result.summary().top1 == 1.0
    assert np.array_equal(result.top5, labelled.reference.top5)
    assert labelled.dataset.layout == "imagenet-val" and labelled.candidates >= IMAGES


def test_resume_after_a_kill_gives_the_uninterrupted_numbers(labelled, tmp_path):
    ds = labelled.dataset
    state = tmp_path / "partial.npz"
    uninterrupted = _run(PooledLinearRunner(seed=7), ds)
    with pytest.raises(KeyboardInterrupt):
        _run(InterruptAfter(3, seed=7), ds, state_file=state, save_every=2)
    same_build = run_identity(PooledLinearRunner(seed=7).load(None, BS), "iresnet50", SPEC, ds)
    top5, _, classes = load_state(state, state_meta(same_build, ds, BS))
    assert len(top5) == 3 * BS and classes == 1000              # nothing computed before the kill was lost
    resumed_runner = PooledLinearRunner(seed=7)
    resumed = _run(resumed_runner, ds, state_file=state, resume=True)
    assert resumed_runner.calls == 3                             # only the 3 remaining batches ran
    assert resumed.resumed_from == 3 * BS
    assert np.array_equal(resumed.top5, uninterrupted.top5)
    assert resumed.summary() == uninterrupted.summary()
    again = PooledLinearRunner(seed=7)
    assert _run(again, ds, state_file=state, resume=True).summary() == uninterrupted.summary()
    assert again.calls == 0                                      # a finished run resumes to its result


def _saved_count(state) -> int:
    with np.load(state, allow_pickle=False) as z:
        return len(z["top5"])


def test_partial_results_are_saved_during_the_run(labelled, tmp_path):
    """Periodic saves, not only the one on the way out: a SIGKILL loses at most save_every batches."""
    state = tmp_path / "partial.npz"
    seen = {}

    def observe(lo, logits):
        seen[lo] = _saved_count(state) if state.exists() else 0

    _run(PooledLinearRunner(), labelled.dataset, state_file=state, save_every=2, observe=observe)
    assert seen == {0: 0, 4: 0, 8: 8, 12: 8, 16: 16, 20: 16}
    assert _saved_count(state) == IMAGES


def test_a_corrupt_image_stops_the_run_naming_it_and_keeps_the_work(labelled, tmp_path):
    import shutil

    from zoogate.datasets import open_dataset

    copy = tmp_path / "copy"
    shutil.copytree(labelled.dataset.root.parent, copy)
    bad = copy / "val" / "ILSVRC2012_val_00000010.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])                        # truncated JPEG
    state = tmp_path / "partial.npz"
    with pytest.raises(ZoogateError, match="ILSVRC2012_val_00000010.JPEG") as err:
        _run(PooledLinearRunner(), open_dataset(copy), state_file=state)
    assert str(bad) in str(err.value)
    assert _saved_count(state) == 8                                # the two batches before the bad one


def test_resume_refuses_partial_results_of_another_run(labelled, tmp_path):
    state = tmp_path / "partial.npz"
    with pytest.raises(KeyboardInterrupt):
        _run(InterruptAfter(2), labelled.dataset, state_file=state)
    with pytest.raises(ZoogateError, match="belong to another run .*batch_size: saved 4, now 2") as err:
        evaluate(PooledLinearRunner().load(None, 2), labelled.dataset, SPEC, 2, state_file=state, resume=True,
                 progress=False, model="iresnet50")
    assert str(state) in str(err.value)
    fresh = _run(PooledLinearRunner(), labelled.dataset, state_file=state)       # no --resume: starts over
    assert fresh.resumed_from == 0 and "started over" in fresh.notes[0]


def test_static_batch_runner_pads_the_last_batch(labelled):
    assert np.array_equal(_run(StaticPooledRunner(), labelled.dataset).top5,
                          _run(PooledLinearRunner(), labelled.dataset).top5)


def test_1001_class_outputs_shift_labels_by_one(tmp_path):
    gen = label_generated_set(tmp_path / "gen1001", PooledLinearRunner(1001).load(None, BS), SPEC, 12, batch_size=BS)
    assert (gen.dataset.labels == gen.reference.top5[:, 0] - 1).all()        # labels stay 0-based
    right = _run(PooledLinearRunner(1001), gen.dataset)
    assert right.num_classes == 1001 and right.summary().top1 == 1.0
    assert "background" in right.notes[-1]
    assert label_offset_gate("inception_v4_1001", right.summary()).status == PASS
    wrong = _run(DropWrongColumn(1001), gen.dataset)
    assert wrong.num_classes == 1000
    offset = label_offset_gate("inception_v4_1001", wrong.summary())
    assert offset.status == FAIL and "labels look off by +1" in offset.reason
    assert reference_gate("inception_v4_1001", wrong, gen.reference).status == FAIL


def test_nonfinite_outputs_are_counted(labelled):
    class NanRunner(PooledLinearRunner):
        def _infer(self, batch):
            out = super()._infer(batch)
            out[0, :] = np.nan
            return out

    result = _run(NanRunner(), labelled.dataset)
    assert result.nonfinite_rows == 6 and result.summary().nonfinite_rows == 6


def test_runner_output_width_must_be_1000_or_1001(labelled):
    with pytest.raises(ZoogateError, match="10 classes per output"):
        _run(PooledLinearRunner(10), labelled.dataset)


# ---------------------------------------------------------------- documented-baseline gate

def _summary(n: int, top1: float, top5: float, classes: int = 1000) -> AccuracySummary:
    h1, h5 = round(n * top1 / 100), round(n * top5 / 100)
    return AccuracySummary(n=n, hits=(h1, h1, h1, h5, h5), num_classes=classes)


def test_full_set_gate_uses_the_plain_tolerance():
    ok = documented_gate("inception_v4", _summary(50_000, 80.0, 94.9), "top1")
    assert ok.status == PASS and ok.baseline == 80.162
    bad = documented_gate("inception_v4", _summary(50_000, 79.5, 94.9), "top1")
    assert bad.status == FAIL and "allowed +/-0.5 pp" in bad.reason
    assert documented_gate("inception_v4", _summary(50_000, 80.0, 94.5), "top5").status == FAIL


def test_subset_gate_fails_only_outside_the_widened_wilson_interval():
    # 5000 images at 79.5 %: the 99 % interval is about [78.0, 80.9] %; documented 80.162 lies inside
    near = documented_gate("inception_v4", _summary(5000, 79.5, 94.0), "top1")
    assert near.status == PASS
    lo, hi = near.details["interval_pp"]
    assert lo < 79.5 < hi and near.details["widened_pp"] == [lo - 0.5, hi + 0.5]
    tiny = documented_gate("inception_v4", _summary(8, 0.0, 0.0), "top1")
    assert tiny.status == FAIL and tiny.details["widened_pp"][0] == 0.0          # clipped to [0, 100] %
    assert "Wilson 99% interval" in near.reason and near.details["subset"]
    # 1000 images at 70 %: the documented 80.162 is outside even the widened interval
    far = documented_gate("inception_v4", _summary(1000, 70.0, 94.0), "top1")
    assert far.status == FAIL and "excludes documented 80.162" in far.reason


def test_gate_uses_the_row_the_run_claims():
    rec = documented_gate("inception_v4_1001", _summary(50_000, 79.9, 94.8, classes=1001), "top1", "ascend-310p3")
    assert rec.status == PASS and rec.baseline == 79.99 and "InceptionV4_for_Pytorch/README.md: 性能&精度" in rec.source
    no_top5 = documented_gate("inception_v4_mindspore", _summary(50_000, 80.0, 94.0), "top5", "ascend-310")
    assert no_top5.status == INCONCLUSIVE and "documents no top5" in no_top5.reason
    with pytest.raises(ZoogateError, match="no baseline row 'nope'"):
        documented_gate("inception_v4", _summary(10, 80, 90), "top1", "nope")


def test_too_few_images_is_inconclusive_never_a_pass():
    # 1000 images at 78 %: the widened 99 % interval spans ~7.6 pp, wider than accuracy_interval_max_pp
    wide = documented_gate("inception_v4", _summary(1000, 78.0, 94.0), "top1")
    assert wide.status == INCONCLUSIVE and "too few images to tell" in wide.reason
    assert 2000 < wide.details["images_to_decide"] < 4000
    # 0 of 2 correct: the widened interval reaches 77.8 %, which holds iresnet50's 77.168 %
    zero_of_two = documented_gate("iresnet50", _summary(2, 0.0, 0.0), "top1")
    assert zero_of_two.status == INCONCLUSIVE
    # the same evidence is still decisive where the documented value lies outside it
    assert documented_gate("inception_v4", _summary(2, 0.0, 0.0), "top1").status == FAIL
    nothing = documented_gate("iresnet50", _summary(0, 0.0, 0.0), "top1")
    assert nothing.status == INCONCLUSIVE and "no images were scored" in nothing.reason


def test_an_informational_row_is_never_passed():
    rec = documented_gate("inception_v4_mindspore", _summary(50_000, 80.0, 94.0), "top1", "ascend-910-train")
    assert rec.status == INCONCLUSIVE and "informational" in rec.reason


def test_without_imagenet_the_documented_gates_say_how_to_run_them():
    rec = skip_no_imagenet("inception_v4", "top1")
    assert rec.status == SKIP and rec.reason == NO_IMAGENET == "no ImageNet: pass --imagenet DIR"


# ---------------------------------------------------------------- reference (MLPerf 99 %) and label-offset gates

def test_reference_gate_floor_is_99_percent_of_the_reference():
    reference = _summary(1000, 80.0, 95.0)
    assert reference_gate("inception_v4", _summary(1000, 79.3, 95.0), reference).status == PASS   # 79.3 >= 79.2
    low = reference_gate("inception_v4", _summary(1000, 79.0, 95.0), reference)
    assert low.status == FAIL and "< floor 79.200 %" in low.reason
    zero = reference_gate("inception_v4", _summary(1000, 0.0, 0.0), _summary(1000, 0.0, 0.0))
    assert zero.status == INCONCLUSIVE
    with pytest.raises(ZoogateError, match="not the same set"):
        reference_gate("inception_v4", _summary(999, 80.0, 95.0), reference)


def test_reference_gate_refuses_runs_over_different_images(labelled):
    other = EvalResult(**{**labelled.reference.__dict__, "fingerprint": "0123456789abcdef"})
    with pytest.raises(ZoogateError, match="another image set"):
        reference_gate("iresnet50", other, labelled.reference)


def test_label_offset_gate():
    honest = AccuracySummary(n=1000, hits=(800, 850, 900, 920, 950), num_classes=1001, offset_top1={-1: 20, 1: 25})
    assert label_offset_gate("inception_v4_1001", honest).status == PASS
    planted = AccuracySummary(n=1000, hits=(1, 2, 3, 4, 5), num_classes=1000, offset_top1={-1: 2, 1: 799})
    rec = label_offset_gate("inception_v4_1001", planted)
    assert rec.status == FAIL and rec.measured == 0.1 and rec.baseline == 79.9


def test_live_evaluations_persist_and_find_the_reference_run(labelled, tmp_path):
    from zoogate.plugin.accuracy import REFERENCE_RUNNER, AccuracyOptions, LiveEvaluations

    options = AccuracyOptions(imagenet="x", limit=None, resume=False, results=None, labels=None, baseline_row=None,
                              models=None)

    def reference_runner(model):
        runner = PooledLinearRunner().load(None, BS)
        runner.name = REFERENCE_RUNNER
        return runner

    assert LiveEvaluations(options, state_dir=tmp_path).reference("iresnet50", labelled.dataset) is None  # no runner
    first = LiveEvaluations(options, reference_runner, state_dir=tmp_path)
    run = first.run("iresnet50", reference_runner("iresnet50"), labelled.dataset, BS)
    assert first.reference("iresnet50", labelled.dataset) is run                 # memoised in the session
    saved = list(tmp_path.glob(f"iresnet50-{REFERENCE_RUNNER}-bs{BS}-*.npz"))
    assert len(saved) == 1 and run.identity.digest() in saved[0].name
    later = LiveEvaluations(options, reference_runner, state_dir=tmp_path).reference("iresnet50", labelled.dataset)
    assert later is not None and np.array_equal(later.top5, run.top5) and "saved run" in later.notes[0]
    subset = labelled.dataset.subset(10)                                         # other images: computed anew
    computed = LiveEvaluations(options, reference_runner, state_dir=tmp_path).reference("iresnet50", subset)
    assert computed.n == 10 and not any("saved run" in n for n in computed.notes)
