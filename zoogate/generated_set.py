"""A generated labelled set (CI without ImageNet): generated images in the exact ImageNet layout, labelled by
the fp32 reference's top-1 through the live path, and cached.

Labelling runs the reference over every candidate image, which costs as much as the evaluations the set
is made for. The kept JPEG files and the reference's top-5 are cached under ``<cache>/labels/``, keyed by
the reference build (runner, weights, library versions), the preprocessing, the set's size, seed and batch
size, the margin tolerance and the image generator's versions. A set read back from the cache is checked
against the digest stored with it, then written again byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoogate import baselines
from zoogate.accuracy import EvalResult, evaluate
from zoogate.baselines import Preprocess
from zoogate.datasets import LabelledSet, generated_jpegs, write_imagenet_layout
from zoogate.metrics import class_shift
from zoogate.partial_results import run_identity

# images per generated set: with the 99 % floor every image must agree, so even 24 is a sharp test.
# inception_v4 costs ~2.6x iresnet50 per image on the CPU (labelling runs PyTorch eager).
GENERATED_IMAGES = {"inception_v4": 24}
GENERATED_IMAGES_DEFAULT = 32
CANDIDATE_SURPLUS = 1.25             # generated per wanted image, over the share kept so far (first round: 1/2)
FIRST_ROUND_KEPT = 0.5               # the share of candidates the first round expects to keep (margin 0: all)
CANDIDATE_ROUNDS = 4
LABELS_VERSION = 2                   # bump when what the labelling keeps changes


@dataclass
class GeneratedSet:
    dataset: LabelledSet
    reference: EvalResult            # the fp32 reference run that made the labels
    candidates: int                  # images generated to find len(dataset) unambiguous ones


def _labelled(root: Path, reference_runner, spec: Preprocess, n: int, *, model: str, seed: int,
              batch_size: int, margin: float) -> tuple[list[bytes], np.ndarray, int, int]:
    """(kept JPEG bytes, their reference top-5, num_classes, candidates tried)."""
    import shutil

    staging = root / ".candidates"
    kept: list[tuple[bytes, np.ndarray]] = []
    num_classes = 0
    tried = 0
    for rnd in range(CANDIDATE_ROUNDS):
        want = n - len(kept)
        share = max(len(kept) / tried, 0.05) if tried else (FIRST_ROUND_KEPT if margin > 0 else 1.0)
        count = -(-int(want * CANDIDATE_SURPLUS / share) // batch_size) * batch_size
        jpegs = generated_jpegs(count, seed=seed + tried)
        tried += count
        candidates = write_imagenet_layout(staging / f"round{rnd}", jpegs, [0] * count)
        clear = np.zeros(count, dtype=bool)

        def observe(lo: int, logits: np.ndarray) -> None:
            top2 = np.sort(logits, axis=1)[:, -2:]
            usable = (top2[:, 1] - top2[:, 0] >= margin) & np.isfinite(logits).all(axis=1)
            usable &= np.argmax(logits, axis=1) >= class_shift(logits.shape[1])
            clear[lo:lo + len(logits)] = usable

        run = evaluate(reference_runner, candidates, spec, batch_size, progress=False, model=model, observe=observe)
        num_classes = run.num_classes
        kept += [(jpegs[j], run.top5[j]) for j in np.flatnonzero(clear)[:want]]
        if len(kept) >= n:
            break
    shutil.rmtree(staging, ignore_errors=True)
    if len(kept) < n:
        raise RuntimeError(f"only {len(kept)} of {tried} generated images have a reference top-1 margin >= "
                           f"{margin}: the reference model is too flat to label a set")
    return [j for j, _ in kept], np.stack([t for _, t in kept]).astype(np.int16), num_classes, tried


def label_generated_set(root, reference_runner, spec: Preprocess, n: int, *, model: str = "", seed: int = 0,
                        batch_size: int = 8, reference_parts: dict | None = None,
                        margin: float | None = None) -> GeneratedSet:
    """Write `n` generated images in the exact ImageNet layout, labelled with the reference's top-1.

    The labels come from the live path itself: candidates are written in the ImageNet layout and run through
    ``evaluate`` (reader, preprocessing, runner, top-k) with the reference runner. Candidates whose reference
    top-1 beats the runner-up by less than the tolerance `generated_label_margin` are left out (their label
    would be a coin toss for any backend that reorders float sums), as are 1001-class images whose top-1 is
    the background class. The kept files are written again, byte for byte, as the final set.

    ``margin``: the top-1 margin a kept image needs (default: that tolerance; 0 keeps every candidate with a
    finite, non-background top-1, as a calibration set that needs labels only for class balance does).
    ``reference_parts`` (what identifies the reference build: runner, weights, library versions) turns the
    cache on; without it the set is labelled afresh.
    """
    if margin is None:
        margin = baselines.tolerance("generated_label_margin").value
    root = Path(root)
    label = lambda: _labelled(root, reference_runner, spec, n, model=model, seed=seed, batch_size=batch_size,
                              margin=margin)
    if reference_parts is None:
        jpegs, top5, num_classes, tried = label()
    else:
        jpegs, top5, num_classes, tried = _cached_labels(
            label, {"reference": reference_parts, "model": model, "preprocess": spec.describe(), "n": n,
                    "seed": seed, "batch_size": batch_size, "margin": margin, "surplus": CANDIDATE_SURPLUS,
                    "first_round_kept": FIRST_ROUND_KEPT,
                    "rounds": CANDIDATE_ROUNDS, "version": LABELS_VERSION, "images": _generator_versions()},
            model)
    labels = (top5[:, 0].astype(np.int64) - class_shift(num_classes)).tolist()
    dataset = write_imagenet_layout(root, jpegs, labels)
    reference = EvalResult(model=model, runner=getattr(reference_runner, "name", "reference"), batch_size=batch_size,
                           dataset=dataset.describe(), fingerprint=dataset.fingerprint(), labels=dataset.labels,
                           top5=top5, num_classes=num_classes,
                           notes=[f"labels = reference top-1 through the live path; {n} of {tried} generated "
                                  f"images kept (top-1 margin >= {margin})"],
                           identity=run_identity(reference_runner, model, spec, dataset))
    return GeneratedSet(dataset, reference, tried)


def generated_set_for(root, loaded, n: int, *, seed: int = 0, batch_size: int = 8,
                      margin: float | None = None) -> GeneratedSet:
    """``label_generated_set`` with ``loaded`` (a zoogate.weights.LoadedModel) as the PyTorch fp32 reference,
    its labels cached per weights."""
    from hardware.torch_runner import TorchRunner
    from zoogate import cache

    reference = TorchRunner().load(loaded, batch_size)
    return label_generated_set(root, reference, loaded.baseline.preprocess, n, model=loaded.name, seed=seed,
                               batch_size=batch_size, margin=margin,
                               reference_parts={"runner": reference.name, "weights": loaded.weights_identity,
                                                **cache.versions()})


def _generator_versions() -> dict:
    import PIL

    return {"numpy": np.__version__, "Pillow": PIL.__version__}


def _digest(blob: bytes, top5: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(blob + np.ascontiguousarray(top5, dtype=np.int16).tobytes()).hexdigest()


def _cached_labels(label, parts: dict, model: str):
    """label() -> (jpegs, top5, num_classes, tried), read from or written to the labels cache."""
    from zoogate import cache
    from zoogate.errors import ZoogateError

    def produce(tmp: Path) -> None:
        jpegs, top5, num_classes, tried = label()
        blob = b"".join(jpegs)
        with open(tmp, "wb") as fh:
            np.savez(fh, jpegs=np.frombuffer(blob, dtype=np.uint8), sizes=np.array([len(j) for j in jpegs]),
                     top5=top5, num_classes=np.int64(num_classes), tried=np.int64(tried),
                     digest=np.str_(_digest(blob, top5)))

    path, _hit = cache.cached("labels", parts, ".npz", produce, label=model or "generated")
    try:
        with np.load(path, allow_pickle=False) as saved:
            blob, sizes, top5 = saved["jpegs"].tobytes(), saved["sizes"], saved["top5"]
            num_classes, tried, digest = int(saved["num_classes"]), int(saved["tried"]), str(saved["digest"])
    except (OSError, ValueError, KeyError) as exc:
        raise ZoogateError(f"cached generated labels unreadable ({exc}): remove the file", path) from None
    if _digest(blob, top5) != digest:
        raise ZoogateError("cached generated labels do not match their digest: remove the file", path)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [blob[bounds[i]:bounds[i + 1]] for i in range(len(sizes))], top5, num_classes, tried
