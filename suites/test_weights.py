"""Weights: calibrated logits are in a realistic range; real checkpoints load safely; the cache works."""

import numpy as np
import pytest

from zoogate import baselines, cache
from zoogate.errors import ZoogateError

# torch and the modules built on it are imported in the tests that use them, not when the module is collected
# (every pytest run collects it, a lab command that skips everything too)


def test_calibrated_logit_std_is_realistic(torch_model_name, zoo, eager_logits):
    """Random init gives ~1e11; calibrated weights must give logits with a trained-model-like spread,
    measured on generated images that were not used for calibration (the agreement gate's batch: its eager
    logits are memoised for the session)."""
    model_name = torch_model_name
    lm = zoo.model(model_name)
    if not lm.calibrated:
        pytest.skip(f"{model_name} uses a real checkpoint ({lm.origin}); calibration not applied")
    logits = eager_logits(model_name, zoo.batch(model_name, 4))
    std = float(logits.std())
    lo = baselines.tolerance("calibrated_logit_std_min").value
    hi = baselines.tolerance("calibrated_logit_std_max").value
    assert lo <= std <= hi, f"{model_name}: logit std {std:.3g} outside [{lo}, {hi}]"
    assert len(set(logits.argmax(1).tolist())) > 1, "every image has the same top-1: classifier not calibrated"


def test_random_init_is_not_realistic():
    """The reason calibration exists: eval-mode logits of an uncalibrated deep net are absurd or flat."""
    from zoogate import models, weights

    mb = baselines.model("inception_v3")
    module = models.build("inception_v3")
    batch = weights.calibration_batches(mb)[0][:2]
    std = weights.logit_std(module, batch)
    lo = baselines.tolerance("calibrated_logit_std_min").value
    hi = baselines.tolerance("calibrated_logit_std_max").value
    assert not lo <= std <= hi, f"random init already realistic (std {std:.3g}); calibration check is vacuous"


def test_calibration_is_cached_and_deterministic(tmp_path, monkeypatch):
    # a smaller calibration (1 batch of 2 images): this test is about the cache, not calibration quality
    import torch

    from zoogate import weights

    monkeypatch.setitem(weights.CALIBRATION, "batches", 1)
    monkeypatch.setitem(weights.CALIBRATION, "batch_size", 2)
    cache.set_root(tmp_path)
    try:
        a = weights.load_model("iresnet50")
        files = list((tmp_path / "weights").glob("*.safetensors"))
        assert len(files) == 1
        stamp = files[0].stat().st_mtime_ns
        b = weights.load_model("iresnet50")
        assert files[0].stat().st_mtime_ns == stamp          # warm: not recomputed
        assert a.weights_id == b.weights_id
        for (ka, va), (kb, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    finally:
        cache.set_root(None)


def test_checkpoint_round_trip(tmp_path, zoo):
    import torch

    from zoogate import weights

    lm = zoo.model("iresnet50")
    path = tmp_path / "iresnet50.pth"
    torch.save(lm.module.state_dict(), path)
    loaded = weights.load_model("iresnet50", [str(tmp_path)])
    assert loaded.origin.startswith("checkpoint")
    x = torch.from_numpy(np.array(zoo.batch("iresnet50", 2)))
    with torch.no_grad():
        assert torch.equal(loaded.module(x), lm.module(x))


def test_checkpoint_with_wrapper_and_module_prefix(tmp_path, zoo):
    import torch

    from zoogate import weights

    sd = {f"module.{k}": v for k, v in zoo.model("iresnet50").module.state_dict().items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": sd, "epoch": 90}, path)
    assert weights.load_model("iresnet50", [f"iresnet50={path}"]).origin.startswith("checkpoint")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path):
    import torch

    from zoogate import weights

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _Evil()}, path)
    with pytest.raises(ZoogateError, match="refused") as err:
        weights.load_model("iresnet50", str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content,problem", [(b"", "not a readable"), (b"garbage" * 10, "not a readable")])
def test_bad_checkpoint_files(tmp_path, content, problem):
    from zoogate import weights

    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(ZoogateError, match=problem):
        weights.load_model("iresnet50", str(path))


def test_checkpoint_that_does_not_fit(tmp_path):
    import torch

    from zoogate import models, weights

    path = tmp_path / "wrong.pth"
    torch.save(models.build("iresnet101").state_dict(), path)
    with pytest.raises(ZoogateError, match="does not fit the model") as err:
        weights.load_model("iresnet50", str(path))
    assert "unexpected key" in str(err.value) and str(path) in str(err.value)


def test_missing_weights_file_and_dir(tmp_path):
    from zoogate import weights

    with pytest.raises(ZoogateError, match="not found"):
        weights.load_model("iresnet50", str(tmp_path / "nope.pth"))
    with pytest.raises(ZoogateError, match="not a directory"):
        weights.resolve_weights("iresnet50", [str(tmp_path / "nodir")])


def test_cadene_layout_loads_into_the_1001_class_model(tmp_path):
    """The Ascend guide's Cadene checkpoint uses features.* / last_linear.* with 1001 outputs."""
    import torch

    from zoogate import models, weights

    sd = models.build("inception_v4_1001").state_dict()
    assert sd["last_linear.weight"].shape[0] == 1001 and any(k.startswith("features.") for k in sd)
    path = tmp_path / "inceptionv4-cadene.pth"
    torch.save(sd, path)
    assert weights.load_model("inception_v4_1001", str(path)).origin.startswith("checkpoint")
