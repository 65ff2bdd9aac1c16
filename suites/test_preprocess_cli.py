"""`zoogate preprocess`: files equal to torchvision's transforms, the device formats, and the safety rules
(bad files reported, never a silent skip, nothing written into the source folder, no overwrite without asking)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from zoogate import baselines, cli
from zoogate.preprocess import measured, parity, vdsp, writers
from zoogate.preprocess import variants as V
from zoogate.preprocess.reference import torch_threads
from zoogate.synthetic import image as synthetic_image

INCEPTION_VDSP = measured.VDSP_DIR / "timm-inception_v4-vdsp_params.json"


def zoogate(*args) -> int:
    return cli.main(["preprocess", *map(str, args)])


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def outside_folder(tmp_path_factory) -> Path:
    """A folder of images outside the repository: assorted sizes, modes and formats, and a sub-folder."""
    root = tmp_path_factory.mktemp("lab-images")
    (root / "class_a").mkdir()
    specs = [("ILSVRC2012_val_00000001.JPEG", (500, 375), "RGB", "JPEG"), ("wide.png", (640, 97), "RGB", "PNG"),
             ("gray.jpg", (333, 500), "L", "JPEG"), ("tiny.webp", (31, 17), "RGB", "WEBP"),
             ("class_a/alpha.png", (211, 157), "RGBA", "PNG"), ("class_a/cmyk.jpg", (300, 301), "CMYK", "JPEG")]
    for i, (name, (w, h), mode, fmt) in enumerate(specs):
        img = synthetic_image(100 + i, w, h)
        img = img.convert(mode) if mode != "RGBA" else img.convert("RGBA")
        img.save(root / name, fmt, **({"quality": 88} if fmt in ("JPEG", "WEBP") else {}))
    return root


def torchvision_arrays(folder: Path, spec: baselines.Preprocess) -> dict[str, np.ndarray]:
    """The acceptance oracle: torchvision's transforms on PIL.Image.open(f).convert('RGB'), nothing of ours."""
    tf = T.Compose([T.Resize(spec.resize, interpolation=T.InterpolationMode(spec.interpolation)),
                    T.CenterCrop(spec.crop), T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    with torch_threads(1):
        return {str(p.relative_to(folder).with_suffix("")): tf(Image.open(p).convert("RGB")).numpy()
                for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reference_npy_equals_torchvision_on_any_folder(outside_folder, tmp_path, gate_log, capsys):
    before = snapshot(outside_folder)
    out = tmp_path / "out"
    assert zoogate("--model", "inception_v4", "--variant", "reference", "--format", "npy",
                   "--src", outside_folder, "--out", out) == 0
    assert "6 of 6 files written" in capsys.readouterr().out
    truth = torchvision_arrays(outside_folder, baselines.model("inception_v4").preprocess)
    worst = 0.0
    for stem, want in truth.items():
        got = writers.read_npy(out / f"{stem}.npy")
        assert got.dtype == np.float32 and got.shape == want.shape == (3, 299, 299)
        worst = max(worst, float(np.abs(got - want).max()))
    assert snapshot(outside_folder) == before                 # the source folder is untouched
    gate_log(parity.gate_max_abs("inception_v4", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="torchvision transforms on PIL.Image.open(f).convert('RGB')"))


def test_fixture_set_with_exif_and_every_mode_equals_torchvision(tmp_path, gate_log):
    out = tmp_path / "out"
    assert zoogate("--model", "iresnet50", "--format", "npy", "--src", measured.GOOD_IMAGES, "--out", out) == 0
    truth = torchvision_arrays(measured.GOOD_IMAGES, baselines.model("iresnet50").preprocess)
    worst = max(float(np.abs(writers.read_npy(out / f"{stem}.npy") - want).max()) for stem, want in truth.items())
    assert len(truth) == len(list(out.iterdir()))
    gate_log(parity.gate_max_abs("iresnet50", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="torchvision on the fixture set"))


def test_planted_cli_fault_fails_the_cli_gate(outside_folder, tmp_path):
    """The acceptance gate can fail: Ascend-style files are not torchvision's."""
    out = tmp_path / "out"
    assert zoogate("--model", "inception_v4", "--variant", "ascend-modelzoo", "--src", outside_folder, "--out", out) == 0
    truth = torchvision_arrays(outside_folder, baselines.model("inception_v4").preprocess)
    worst = max(float(np.abs(writers.read_npy(out / f"{s}.npy") - t).max()) for s, t in truth.items())
    record = parity.gate_max_abs("inception_v4", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="planted")
    assert record.status == "fail"


def test_bin_is_the_ascend_float32_chw_raw_file(outside_folder, tmp_path):
    out = tmp_path / "bin"
    assert zoogate("--model", "inception_v4", "--variant", "ascend-modelzoo", "--format", "bin",
                   "--src", outside_folder, "--out", out) == 0
    f = out / "ILSVRC2012_val_00000001.bin"
    assert f.stat().st_size == 1_072_812                    # 3 * 299 * 299 * 4, as the guide's .bin
    img = Image.open(outside_folder / "ILSVRC2012_val_00000001.JPEG").convert("RGB")
    want = V.build("ascend-modelzoo", "inception_v4")(img)
    assert np.array_equal(writers.read_bin(f, (3, 299, 299)), want)


def test_npz_is_the_vacc_vamp_input_and_vdsp_emulation_reads_it(outside_folder, tmp_path):
    out = tmp_path / "npz"
    assert zoogate("--model", "inception_v4", "--format", "npz", "--src", outside_folder, "--out", out) == 0
    datalist = (out / writers.DATALIST_NAME).read_text().splitlines()
    assert len(datalist) == 6 and datalist == sorted(datalist)
    assert all(Path(line).is_absolute() and Path(line).is_file() for line in datalist)
    npz = out / "class_a" / "cmyk.npz"
    raw = writers.read_npz_image(npz)
    pixels = np.asarray(Image.open(outside_folder / "class_a" / "cmyk.jpg").convert("RGB"))
    assert raw.dtype == np.uint8 and raw.shape == (3, 301, 300)         # CHW at the original size
    assert np.array_equal(raw.transpose(1, 2, 0), pixels)
    # what the card would compute from that npz == what `--variant vacc-vdsp --format npy` writes
    tensors = tmp_path / "vdsp-npy"
    assert zoogate("--model", "inception_v4", "--variant", "vacc-vdsp", "--vdsp-params", INCEPTION_VDSP,
                   "--src", outside_folder, "--out", tensors) == 0
    emulated = vdsp.VdspPipeline(vdsp.load_params(INCEPTION_VDSP))(Image.fromarray(raw.transpose(1, 2, 0)))
    assert np.array_equal(writers.read_npy(tensors / "class_a" / "cmyk.npy"), emulated)


def test_bad_files_are_listed_with_why_and_the_rest_is_processed(tmp_path, capsys):
    out = tmp_path / "out"
    rc = zoogate("--model", "inception_v4", "--variant", "fast", "--src", measured.FIXTURE_DIR / "images", "--out", out)
    captured = capsys.readouterr()
    assert rc == 1
    good = sorted(p.stem for p in measured.GOOD_IMAGES.iterdir())
    assert sorted(p.stem for p in (out / "good").iterdir()) == good
    assert not (out / "bad").exists() or not any((out / "bad").iterdir())
    assert f"{len(good)} of {len(good) + 4} files written" in captured.out
    assert "4 file(s) failed" in captured.err
    for name, why in [("truncated.jpg", "truncated"), ("zero_bytes.jpg", "empty file"),
                      ("not_an_image.jpg", "not an image"), ("readme.txt", "not an image")]:
        line = next(line for line in captured.err.splitlines() if name in line)
        assert why in line and str(measured.BAD_IMAGES / name) in line


def test_never_writes_into_the_source_folder(outside_folder, tmp_path, capsys):
    before = snapshot(outside_folder)
    assert zoogate("--model", "inception_v4", "--src", outside_folder, "--out", outside_folder) == 2
    assert zoogate("--model", "inception_v4", "--src", outside_folder, "--out", outside_folder / "class_a" / "out") == 2
    assert "never writes into the source folder" in capsys.readouterr().err
    assert snapshot(outside_folder) == before


def test_refuses_to_overwrite_unless_asked(outside_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", outside_folder, "--out", out) == 0
    written = snapshot(out)
    marker = out / "wide.npy"
    marker.write_bytes(b"a lab's file")
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", outside_folder, "--out", out) == 2
    err = capsys.readouterr().err
    assert "already exist" in err and "--overwrite" in err
    assert marker.read_bytes() == b"a lab's file"               # nothing replaced
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", outside_folder, "--out", out,
                   "--overwrite") == 0
    assert snapshot(out) == written


def test_parallel_jobs_give_the_same_files(outside_folder, tmp_path):
    one, two = tmp_path / "j1", tmp_path / "j2"
    assert zoogate("--model", "inception_v4", "--variant", "fast", "--src", outside_folder, "--out", one) == 0
    assert zoogate("--model", "inception_v4", "--variant", "fast", "--src", outside_folder, "--out", two,
                   "--jobs", "2") == 0
    assert snapshot(one) == snapshot(two) and len(snapshot(one)) == 6


def test_same_stem_fails_the_second_file_and_left_out_entries_are_listed(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    synthetic_image(1, 64, 64).save(src / "a.jpg")
    synthetic_image(2, 64, 64).save(src / "a.png")
    (src / ".DS_Store").write_bytes(b"hidden")
    (tmp_path / "elsewhere").mkdir()
    (src / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", src, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "a.png" in err and "would also be written for a.jpg" in err
    assert "left out 2 entries" in err and ".DS_Store (hidden)" in err and "linked (symlinked folder" in err


@pytest.mark.parametrize("args,message", [
    (("--model", "nope"), "unknown model 'nope'"),
    (("--model", "inception_v4", "--variant", "vacc-vdsp"), "--vdsp-params"),
    (("--model", "iresnet50", "--variant", "timm-eval"), "not a timm model"),
    (("--model", "inception_v4", "--variant", "reference", "--format", "npz"), "--variant vacc-vdsp"),
    (("--model", "inception_v4", "--variant", "vacc-vdsp", "--vdsp-params", "missing.json"), "not found"),
    (("--model", "inception_v4", "--jobs", "0"), "--jobs must be >= 1"),
], ids=["unknown-model", "vdsp-without-params", "timm-eval-on-iresnet", "npz-with-reference", "vdsp-params-missing",
        "jobs-0"])
def test_bad_arguments_exit_2_with_a_reason(args, message, outside_folder, tmp_path, capsys):
    assert zoogate(*args, "--src", outside_folder, "--out", tmp_path / "out") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_choices_are_the_library_variants_and_formats():
    from zoogate.commands import preprocess as command

    assert set(command.VARIANT_CHOICES) == set(V.VARIANTS)
    assert set(command.FORMAT_CHOICES) == set(writers.FORMATS)


def test_missing_or_empty_source_folder_exits_2(tmp_path, capsys):
    assert zoogate("--model", "inception_v4", "--src", tmp_path / "nowhere", "--out", tmp_path / "o") == 2
    assert "source folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert zoogate("--model", "inception_v4", "--src", tmp_path / "empty", "--out", tmp_path / "o") == 2
    assert "no files to preprocess" in capsys.readouterr().err


def test_bad_vdsp_params_file_names_the_key(outside_folder, tmp_path, capsys):
    bad = tmp_path / "vdsp.json"
    shutil.copy(INCEPTION_VDSP, bad)
    bad.write_text(bad.read_text().replace('"BILINEAR_CV"', '"BICUBIC"'))
    assert zoogate("--model", "inception_v4", "--variant", "vacc-vdsp", "--vdsp-params", bad,
                   "--src", outside_folder, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "ResizeType" in err and "BICUBIC" in err
