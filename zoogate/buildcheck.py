"""`zoogate check-build`: a vamc build config against the model's documented pipeline.

Findings (each fails the check) are what would make the build differ from the documented model: a
frontend shape that is not the model's input, calibration preprocessing that is not the reference's
(a square resize where the reference resizes the short side, another crop, other normalisation
constants), and an int8 calibration set smaller than the guide asks. Notes change no verdict but what
the gates must expect: ``extra_ops: softmax`` makes the outputs probabilities, so agreement gates compare
them with the softmax of the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from zoogate import baselines
from zoogate.baselines import Preprocess
from zoogate.vamc import BuildConfig

IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Finding:
    key: str              # the yaml key at fault, e.g. dataset.process_ops.Resize
    problem: str
    numbers: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass
class BuildCheck:
    config: BuildConfig
    model: str
    findings: list[Finding]
    notes: list[str]

    @property
    def conforms(self) -> bool:
        return not self.findings


def _interp(spec: Preprocess):
    return {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[spec.interpolation]


def yaml_preprocess(config: BuildConfig, img: Image.Image, spec: Preprocess) -> np.ndarray:
    """float32 CHW of one image through the config's process_ops, as zoogate reads them: the reference's
    decoder and interpolation (the yaml names neither), the yaml's resize, crop and normalisation."""
    rgb = img.convert("RGB")
    resize = config.resize()
    if resize is None:
        resized = rgb
    elif resize.short_side:
        w, h = rgb.size
        short, long_ = (w, h) if w <= h else (h, w)
        other = int(resize.height * long_ / short)
        size = (resize.height, other) if w <= h else (other, resize.height)
        resized = rgb.resize(size, _interp(spec))
    else:
        resized = rgb.resize((resize.width, resize.height), _interp(spec))
    crop = config.crop() or (resized.height, resized.width)
    top = int(round((resized.height - crop[0]) / 2.0))
    left = int(round((resized.width - crop[1]) / 2.0))
    arr = np.asarray(resized, dtype=np.float32)[top:top + crop[0], left:left + crop[1]] / 255.0
    norm = config.normalize()
    if norm is not None:
        arr = (arr - np.asarray(norm[0], np.float32)) / np.asarray(norm[1], np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)


def _distance(config: BuildConfig, spec: Preprocess, images: list[Image.Image]) -> dict | None:
    from zoogate.preprocess.reference import preprocess_reference

    diffs = []
    for img in images:
        ref = preprocess_reference(img, spec)
        got = yaml_preprocess(config, img, spec)
        if got.shape != ref.shape:
            return None
        diffs.append(np.abs(got - ref))
    if not diffs:
        return None
    stacked = np.stack(diffs)
    return {"images": len(diffs), "max_abs": float(stacked.max()), "mean_abs": float(stacked.mean())}


def distance_images() -> tuple[list[Image.Image], str]:
    """The fixture images when the checkout has them, else generated ones (and which it was)."""
    from zoogate.preprocess.measured import GOOD_IMAGES

    count = int(baselines.tolerance("check_build_distance_images").value)
    files = sorted(p for p in GOOD_IMAGES.iterdir() if p.is_file())[:count] if GOOD_IMAGES.is_dir() else []
    if files:
        return [Image.open(p) for p in files], f"{len(files)} fixture images ({GOOD_IMAGES})"
    from zoogate import synthetic

    return synthetic.images(count, seed=0), f"{count} generated images"


def check_build(config: BuildConfig, model: str) -> BuildCheck:
    mb = baselines.model(model)
    spec = mb.preprocess
    findings: list[Finding] = []
    notes: list[str] = []
    value_abs = baselines.tolerance("build_config_value_abs").value

    expected_shape = (1, 3, mb.input_size, mb.input_size)
    if tuple(config.input_shape[1:]) != expected_shape[1:]:
        findings.append(Finding("frontend.shape.input", f"{list(config.input_shape)}, but {model} takes "
                                f"{list(expected_shape)} (NCHW, {mb.input_size} px)"))

    pipeline_differs = False
    if config.process_ops:
        resize = config.resize()
        if resize is None:
            findings.append(Finding("dataset.process_ops", f"no Resize: the reference resizes the short side to "
                                    f"{spec.resize} first"))
            pipeline_differs = True
        elif not resize.short_side:
            findings.append(Finding("dataset.process_ops.Resize", f"size [{resize.height}, {resize.width}] is a "
                                    f"square resize that drops the aspect ratio; the reference resizes the short side "
                                    f"to {spec.resize} (torchvision Resize({spec.resize}))"))
            pipeline_differs = True
        elif resize.height != spec.resize:
            findings.append(Finding("dataset.process_ops.Resize", f"short side {resize.height}, the reference "
                                    f"resizes it to {spec.resize}"))
            pipeline_differs = True
        crop = config.crop()
        if crop != (spec.crop, spec.crop):
            findings.append(Finding("dataset.process_ops.CenterCrop", f"{list(crop) if crop else 'missing'}, the "
                                    f"reference crops [{spec.crop}, {spec.crop}]"))
            pipeline_differs = True
        norm = config.normalize()
        if norm is None:
            findings.append(Finding("dataset.process_ops.Normalize", f"missing; the reference normalises with mean "
                                    f"{list(spec.mean)}, std {list(spec.std)}"))
            pipeline_differs = True
        else:
            for key, got, want in (("mean", norm[0], spec.mean), ("std", norm[1], spec.std)):
                off = max(abs(a - b) for a, b in zip(got, want))
                if off > value_abs:
                    findings.append(Finding(f"dataset.process_ops.Normalize.{key}", f"{list(got)}, the reference "
                                            f"uses {list(want)} (off by {off:.4g})", {"max_off": off}))
                    pipeline_differs = True
        if pipeline_differs:
            images, which = distance_images()
            dist = _distance(config, spec, images)
            if dist:
                text = (f"measured on {which}: max abs {dist['max_abs']:.4f}, mean abs {dist['mean_abs']:.4f} "
                        f"(normalised units) between this calibration preprocessing and the reference")
                notes.append(text)
                for f in findings:
                    if f.key.startswith("dataset.process_ops"):
                        f.numbers.update(dist)
    elif config.precision == "int8":
        findings.append(Finding("dataset.process_ops", "missing: an int8 build calibrates on preprocessed images, "
                                "and nothing says how they are preprocessed"))

    if config.precision == "int8":
        floor = int(baselines.tolerance("calibration_min_images").value)
        n = config.calibration_images
        if n is None:
            findings.append(Finding("dataset.sampler.get_data_num", f"missing: the guide asks for at least {floor} "
                                    "calibration images covering every class"))
        elif n < floor:
            why = f"; fewer than {IMAGENET_CLASSES} images cannot hold every class" if n < IMAGENET_CLASSES else ""
            findings.append(Finding("dataset.sampler.get_data_num", f"{n} calibration images, the guide asks for "
                                    f"{floor} covering every class (calibration_min_images){why}",
                                    {"images": n, "floor": floor}))
        if config.calibrate_mode:
            notes.append(f"int8 calibration: {config.calibrate_mode}, per-channel {config.per_channel}")
    if config.softmax:
        notes.append("graph.extra_ops softmax: the build outputs probabilities, so agreement gates compare them "
                     "with the softmax of the reference logits (top-k is unchanged)")
    return BuildCheck(config=config, model=model, findings=findings, notes=notes)
