"""`zoogate preprocess`: files equal to torchvision's transforms, the device formats, and the safety rules
(bad files reported, never a silent skip, nothing written into the source folder, no overwrite without asking)."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoogate import baselines, cli
from zoogate.gates import preprocessing
from zoogate.preprocess import decoders, measured, vdsp, writers
from zoogate.preprocess import variants as V
from zoogate.preprocess.reference import torch_threads
from zoogate.synthetic import image as synthetic_image

INCEPTION_VDSP = measured.VDSP_DIR / measured.VDSP_FIXTURES[("inception_v4", "inception")]
IRESNET_VDSP = measured.VDSP_DIR / measured.VDSP_FIXTURES[("iresnet", "imagenet")]


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
    from torchvision import transforms as T

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
    gate_log(preprocessing.gate_max_abs("inception_v4", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="torchvision transforms on PIL.Image.open(f).convert('RGB')"))


def test_fixture_set_with_exif_and_every_mode_equals_torchvision(tmp_path, gate_log):
    out = tmp_path / "out"
    assert zoogate("--model", "iresnet50", "--format", "npy", "--src", measured.GOOD_IMAGES, "--out", out) == 0
    truth = torchvision_arrays(measured.GOOD_IMAGES, baselines.model("iresnet50").preprocess)
    worst = max(float(np.abs(writers.read_npy(out / f"{stem}.npy") - want).max()) for stem, want in truth.items())
    assert len(truth) == len(list(out.iterdir()))
    gate_log(preprocessing.gate_max_abs("iresnet50", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="torchvision on the fixture set"))


def test_planted_cli_fault_fails_the_cli_gate(outside_folder, tmp_path):
    """The acceptance gate can fail: Ascend-style files are not torchvision's."""
    out = tmp_path / "out"
    assert zoogate("--model", "inception_v4", "--variant", "ascend-modelzoo", "--src", outside_folder, "--out", out) == 0
    truth = torchvision_arrays(outside_folder, baselines.model("inception_v4").preprocess)
    worst = max(float(np.abs(writers.read_npy(out / f"{s}.npy") - t).max()) for s, t in truth.items())
    record = preprocessing.gate_max_abs("inception_v4", "zoogate-preprocess", worst, "preprocess_cli_vs_torchvision",
                                 check="cli_npy_vs_torchvision", source="planted")
    assert record.status == "fail"


def test_bin_is_the_ascend_float32_chw_raw_file_flat_and_named_at_the_first_dot(outside_folder, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(outside_folder, src)
    shutil.copy(outside_folder / "wide.png", src / "class_a" / "ILSVRC2012_val_00000002.v2.png")
    out = tmp_path / "bin"
    assert zoogate("--model", "inception_v4", "--variant", "ascend-modelzoo", "--format", "bin",
                   "--src", src, "--out", out) == 0
    # one folder, as ais_bench reads it; everything before the first dot, as the Ascend script names them
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{p.name.split('.')[0]}.bin" for p in src.rglob("*") if p.is_file())
    assert all(p.is_file() for p in out.iterdir())
    f = out / "ILSVRC2012_val_00000001.bin"
    assert f.stat().st_size == 1_072_812                    # 3 * 299 * 299 * 4, as the guide's .bin
    img = Image.open(outside_folder / "ILSVRC2012_val_00000001.JPEG").convert("RGB")
    want = V.build("ascend-modelzoo", "inception_v4")(img)
    assert np.array_equal(writers.read_bin(f, (3, 299, 299)), want)
    nested = V.build("ascend-modelzoo", "inception_v4")(Image.open(outside_folder / "wide.png").convert("RGB"))
    assert np.array_equal(writers.read_bin(out / "ILSVRC2012_val_00000002.bin", (3, 299, 299)), nested)


@pytest.fixture(scope="module")
def jpeg_tree(tmp_path_factory) -> Path:
    """An ImageNet-style val folder for image2npz: synset folders, a deeper one, an EXIF-rotated JPEG, a
    dotted name, a CMYK and a grayscale JPEG, and files the tool does not take (.jpg, .JPG, .png)."""
    root = tmp_path_factory.mktemp("val")
    good = measured.GOOD_IMAGES
    layout = {"n01440764/ILSVRC2012_val_00000293.JPEG": "rgb_landscape_500x375.jpg",
              "n01440764/exif6.JPEG": "exif_orientation6_400x300.jpg",
              "n01443537/ILSVRC2012_val_00000236.v2.JPEG": "rgb_odd_345x299.jpg",
              "n01443537/cmyk.JPEG": "cmyk_360x270.jpg",
              "extra/n01484850/gray.JPEG": "l_gray_200x150.jpg",
              "top.JPEG": "rgb_portrait_375x500.jpg",
              "n01440764/lower.jpg": "rgb_square_299x299.jpg",
              "n01440764/upper.JPG": "rgb_square_299x299.jpg",
              "n01443537/small.png": "rgb_small_64x48.png"}
    for rel, fixture in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(good / fixture, root / rel)
    return root


def test_npz_is_what_image2npz_writes_and_the_vamp_variant_reads_it(jpeg_tree, tmp_path, capsys):
    out = tmp_path / "npz"
    assert zoogate("--model", "inception_v4", "--format", "npz", "--vdsp-params", INCEPTION_VDSP,
                   "--src", jpeg_tree, "--out", out, "--datalist", "imagenet_npz.txt") == 0
    captured = capsys.readouterr()
    assert "6 of 6 files written" in captured.out
    assert "left out 3 entries" in captured.err and "lower.jpg (not *.JPEG" in captured.err
    # the tool's inputs and order: glob(SRC/**/*.JPEG, recursive=True), unsorted
    found = [Path(p) for p in glob.glob(os.path.join(jpeg_tree, "**", "*.JPEG"), recursive=True)]
    want = [out / p.parent.name / f"{os.path.splitext(p.name)[0]}.npz" for p in found]
    assert (out / "imagenet_npz.txt").read_text() == "".join(f"{os.path.abspath(p)}\n" for p in want)
    assert (out / jpeg_tree.name / "top.npz").is_file() and (out / "n01484850" / "gray.npz").is_file()
    assert (out / "n01443537" / "ILSVRC2012_val_00000236.v2.npz").is_file()
    for image, npz in zip(found, want):
        with np.load(npz, allow_pickle=False) as z:
            assert z.files == ["input_0"]
            raw = z["input_0"]
        rgb = np.asarray(decoders.decode(image, "cv2"))        # cv2.imread -> RGB: EXIF orientation applied
        assert raw.dtype == np.uint8 and raw.shape == (3, *rgb.shape[:2])
        assert np.array_equal(raw.transpose(1, 2, 0), rgb)
    assert writers.read_npz_image(out / "n01440764" / "exif6.npz").shape == (3, 400, 300)   # stored 400x300
    # what the card computes from those npz == what `--variant vacc-vamp --format npy` writes
    tensors = tmp_path / "vamp-npy"
    assert zoogate("--model", "inception_v4", "--variant", "vacc-vamp", "--vdsp-params", INCEPTION_VDSP,
                   "--src", jpeg_tree, "--out", tensors) == 0
    op = vdsp.VampPipeline(vdsp.load_params(INCEPTION_VDSP))
    for image, npz in zip(found, want):
        card = op(Image.fromarray(writers.read_npz_image(npz).transpose(1, 2, 0)))
        assert np.array_equal(writers.read_npy(tensors / image.relative_to(jpeg_tree).with_suffix(".npy")), card)


def test_npz_name_collisions_are_refused_naming_both(jpeg_tree, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(jpeg_tree, src)
    (src / "other" / "n01440764").mkdir(parents=True)
    shutil.copy(src / "n01440764" / "exif6.JPEG", src / "other" / "n01440764" / "exif6.JPEG")  # same last folder
    out = tmp_path / "npz"
    assert zoogate("--model", "inception_v4", "--format", "npz", "--vdsp-params", INCEPTION_VDSP,
                   "--src", src, "--out", out) == 2
    err = capsys.readouterr().err
    assert "1 output name collision" in err and "nothing was written" in err
    assert str(src / "n01440764" / "exif6.JPEG") in err and str(src / "other" / "n01440764" / "exif6.JPEG") in err
    assert not out.exists()


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


def test_never_writes_into_a_folder_that_holds_the_source(tmp_path, capsys):
    """SRC inside OUT: an output OUT/<sub>/x.npy could land on a source file SRC/x.npy (and --overwrite
    would replace it), so it is refused like OUT inside SRC."""
    out = tmp_path / "out"
    src = out / "images"
    (src / "images").mkdir(parents=True)
    synthetic_image(3, 64, 48).save(src / "images" / "x.png")
    np.save(src / "x.npy", np.zeros(3))                     # a lab's own file where an output would go
    before = snapshot(out)
    for extra in ((), ("--overwrite",)):
        assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", src, "--out", out, *extra) == 2
        err = capsys.readouterr().err
        assert "is inside the output folder" in err and str(out) in err and len(err.strip().splitlines()) == 1
    assert snapshot(out) == before


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


@pytest.mark.parametrize("fmt,second", [("npy", "a.png"), ("bin", "sub/a.v2.png")], ids=["npy-same-stem", "bin-first-dot"])
def test_two_inputs_for_one_output_are_refused_naming_both(fmt, second, tmp_path, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    synthetic_image(1, 64, 64).save(src / "a.jpg")
    synthetic_image(2, 64, 64).save(src / second)
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--format", fmt, "--src", src,
                   "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(src / "a.jpg") in err and str(src / second) in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()


def test_left_out_entries_are_listed(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    synthetic_image(1, 64, 64).save(src / "a.jpg")
    (src / ".DS_Store").write_bytes(b"hidden")
    (tmp_path / "elsewhere").mkdir()
    (src / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert zoogate("--model", "iresnet50", "--variant", "fast", "--src", src, "--out", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "left out 2 entries" in err and ".DS_Store (hidden)" in err and "linked (symlinked folder" in err


@pytest.mark.parametrize("args,message", [
    (("--model", "nope"), "unknown model 'nope'"),
    (("--model", "inception_v4", "--variant", "vacc-vamp"), "--vdsp-params"),
    (("--model", "inception_v4", "--variant", "vacc-vsx"), "--vdsp-params"),
    (("--model", "inception_v4", "--format", "npz"), "--format npz (vamp preprocesses the npz with it) needs --vdsp-params"),
    (("--model", "iresnet50", "--variant", "timm-eval"), "not a timm model"),
    (("--model", "inception_v4", "--variant", "reference", "--format", "npz"), "--variant vacc-vamp"),
    (("--model", "inception_v4", "--variant", "vacc-vsx", "--format", "npz", "--vdsp-params", INCEPTION_VDSP),
     "--variant vacc-vamp"),
    (("--model", "inception_v4", "--variant", "vacc-vamp", "--vdsp-params", "missing.json"), "not found"),
    (("--model", "inception_v4", "--format", "npz", "--vdsp-params", "missing.json"), "not found"),
    (("--model", "inception_v4", "--variant", "vacc-vsx", "--vdsp-params", IRESNET_VDSP), "224x224, but inception_v4 takes 299x299"),
    (("--model", "inception_v4", "--format", "npz", "--vdsp-params", IRESNET_VDSP), "224x224, but inception_v4 takes 299x299"),
    (("--model", "inception_v4", "--variant", "reference", "--vdsp-params", INCEPTION_VDSP), "read only by the VACC flows"),
    (("--model", "inception_v4", "--format", "bin", "--datalist", "list.txt"), "--format bin writes none"),
    (("--model", "inception_v4", "--format", "npz", "--vdsp-params", INCEPTION_VDSP, "--datalist", "sub/list.txt"),
     "expected a file name"),
    (("--model", "inception_v4", "--jobs", "0"), "--jobs must be >= 1"),
], ids=["unknown-model", "vamp-without-params", "vsx-without-params", "npz-without-params", "timm-eval-on-iresnet",
        "npz-with-reference", "npz-with-vsx", "vdsp-params-missing", "npz-vdsp-params-missing", "vdsp-for-another-model",
        "npz-vdsp-for-another-model", "vdsp-params-not-read", "datalist-without-npz", "datalist-path", "jobs-0"])
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
    assert zoogate("--model", "inception_v4", "--variant", "vacc-vamp", "--vdsp-params", bad,
                   "--src", outside_folder, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "ResizeType" in err and "BICUBIC" in err
