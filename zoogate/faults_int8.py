"""Fault-matrix rows for int8 builds: a calibration set gone wrong, caught by the accuracy gate.

Each row builds the primary model's int8 QDQ build (zoogate.int8, the default recipe) on a planted calibration
set drawn from the same labelled generated images as the default one (zoogate.int8.generated_calibration_source),
then runs the MLPerf rule on the generated labelled set: top-1 >= 99 % of the fp32 reference's, the gate that
would stop a published 16 % int8 build. The control is the default build, calibrated on the class-balanced set.
The one-class row also carries the first-divergence bisect of its graph (``bisected``).

What the calibration faults measured on the calibrated weights (generated set of the primary model) is in the
README's int8 section; a BGR or square-resized calibration set moves no range measurably on channel-symmetric
generated images, so neither is a row: ``int8_accuracy(channel_order="BGR")`` and ``int8_accuracy(square=True)``
measure them.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from zoogate import baselines
from zoogate.faults_primary import PRIMARY, PrimaryModel, scratch
from zoogate.record import GateRecord

BS = 8


def _source_images(choose) -> tuple[list, str]:
    """``choose(dataset) -> indices`` applied to the default calibration source; (PIL images, what they are)."""
    from zoogate import int8
    from zoogate.images import open_rgb

    with tempfile.TemporaryDirectory(prefix="zoogate-fault-calib-") as tmp:
        source = int8.generated_calibration_source(PrimaryModel.loaded(), Path(tmp) / "source")
        indices, what = choose(source)
        images = [open_rgb(source.items[i].path) for i in indices]
        for im in images:
            im.load()
        return images, f"{what} ({source.fingerprint()})"


def one_class(source) -> tuple[list[int], str]:
    label, count = Counter(source.labels.tolist()).most_common(1)[0]
    return [i for i, lab in enumerate(source.labels.tolist()) if lab == label], f"the {count} images of class {label}"


def one_image(source) -> tuple[list[int], str]:
    return [0], "one image"


def balanced(source) -> tuple[list[int], str]:
    from zoogate import int8

    return int8.default_choice(source), "the class-balanced default"


def square_resize_pipeline(spec):
    """The model zoo's vamc calibration preprocessing: Resize [R, R] (square), CenterCrop, Normalize."""
    from zoogate.buildcheck import yaml_preprocess
    from zoogate.vamc import BuildConfig

    config = BuildConfig(path=Path("calibration.yaml"), name="calibration", input_shape=(1, 3, spec.crop, spec.crop),
                         frontend_dtype="fp32", precision="int8", calibrate_mode="percentile", per_channel=True,
                         extra_ops=(), calibration_images=None, calibration_path=None,
                         process_ops=({"type": "Resize", "size": [spec.resize, spec.resize]},
                                      {"type": "CenterCrop", "crop_size": [spec.crop, spec.crop]},
                                      {"type": "Normalize", "mean": list(spec.mean), "std": list(spec.std)}))
    return lambda img: yaml_preprocess(config, img, spec)


def calibration(choose=balanced, *, channel_order: str = "RGB", square: bool = False):
    """A calibration set of the primary model: ``choose`` picks the images, fed BGR or square-resized."""
    import dataclasses

    from zoogate import int8

    spec = baselines.model(PRIMARY).preprocess
    if choose is balanced and channel_order == "RGB" and not square:
        return int8.generated_calibration(PrimaryModel.loaded())       # the default build's own set
    images, what = _source_images(choose)
    planted = dataclasses.replace(spec, channel_order=channel_order)
    pipeline = square_resize_pipeline(spec) if square else None
    tag = f"{choose.__name__}:{channel_order}:{'square' if square else 'reference'}"
    return int8.from_images(images, planted, f"planted {tag}: {what}", f"{what}, {tag}", pipeline=pipeline)


def int8_accuracy(choose=balanced, *, channel_order: str = "RGB", square: bool = False,
                  label: str = "") -> GateRecord:
    """The primary model's int8 build on a (planted) calibration set, through the MLPerf rule on the
    generated labelled set."""
    from hardware.onnxruntime_int8 import OnnxRuntimeInt8Runner
    from zoogate import int8
    from zoogate.accuracy import evaluate
    from zoogate.gates.accuracy import reference_gate

    calib = calibration(choose, channel_order=channel_order, square=square)
    path = int8.build(PrimaryModel.onnx(), calib, label=f"{PRIMARY}-{label or 'percentile'}")
    runner = OnnxRuntimeInt8Runner().load(path, BS)
    generated = PrimaryModel.generated_set()
    try:
        result = evaluate(runner, generated.dataset, baselines.model(PRIMARY).preprocess, BS, progress=False,
                          model=PRIMARY)
    finally:
        runner.close()
    record = reference_gate(PRIMARY, result, generated.reference, runner=f"onnxruntime-int8{'+' + label if label else ''}",
                            bs=BS)
    record.details.update(calibration=calib.description, int8_build=str(path))
    return record


def calibrated_on_one_class() -> GateRecord:
    """One class's images only: ranges of one kind of image, the others clipped; bisect names where."""
    from zoogate.bisect import attach

    record = int8_accuracy(one_class, label="one-class-calibration")
    return attach(record, PrimaryModel.onnx(), record.details["int8_build"], PrimaryModel.images(),
                  precision="int8", out_dir=scratch("bisect-"))


def calibrated_on_one_image() -> GateRecord:
    return int8_accuracy(one_image, label="one-image-calibration")

