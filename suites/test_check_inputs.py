"""`zoogate check-inputs`: a lab's preprocessed files named by what made them.

Acceptance: every preprocessing fault of the fault matrix, planted into the flow it is planted into there
and written as .bin files by our own writer, is named as that fault; untouched ascend-modelzoo .bin files
are named as the ascend-modelzoo flow. Then the .npz (image2npz) and .npy paths, the exit codes and the
bad inputs (one line naming the file, exit 2).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from zoogate import cli, faults
from zoogate.errors import ZoogateError
from zoogate.preprocess import check_inputs, explain, measured, planted, writers
from zoogate.preprocess import variants as V
from zoogate.preprocess.decoders import decode
from zoogate.preprocess.vdsp import VampInput

MODEL = faults.PREPROCESS_MODEL
IMAGES = ("rgb_landscape_500x375.jpg", planted.CMYK_FIXTURE, "exif_orientation6_400x300.jpg")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("val")
    for name in IMAGES:
        shutil.copy(measured.GOOD_IMAGES / name, folder / name)
    return folder


def write(folder: Path, images: Path, pipeline, decoder: str, fmt: str = "bin", overrides=None) -> Path:
    """Our writer's files for every image, made by `pipeline` (images decoded with `decoder`, or an override)."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in sorted(images.iterdir()):
        out = pipeline(decode(image, (overrides or {}).get(image.name, decoder)))
        name = writers.bin_name(image.name) if fmt == "bin" else f"{image.name.split('.')[0]}.{fmt}"
        if fmt == "npz":
            writers.write_npz_image(folder / name, out)
        else:
            writers.write_tensor(folder / name, out, fmt)
    return folder


def flow(variant: str):
    return measured.case_for(MODEL, variant).pipeline()


def _matrix_rows():
    """(row id, claimed variant, planted pipeline, decoder, overrides, expected label per image) of every
    preprocessing row of the fault matrix, built from the same fault definitions."""
    rows = []
    for fault in planted.MATRIX_FAULTS:             # planted into the reference (its fast copy) by the matrix
        pipe = fault.pipeline(V.build("fast", MODEL))
        label = "exact ascend-modelzoo" if fault.id == "truncating-crop-offset" else f"reference + {fault.id}"
        rows.append((fault.id, None, pipe, "pil", {}, {n: label for n in IMAGES}))
    for fault in planted.EXACT_FAULTS:
        for variant in V.DEPLOYED:
            pipe, overrides = fault.apply(flow(variant), V.decoder_of(variant))
            named = "reference" if variant == "fast" else variant
            if fault.other_decoder:
                labels = {n: f"{named} + other-decoder" if n in overrides else f"exact {named}" for n in IMAGES}
            else:
                labels = {n: f"{named} + {fault.id}" for n in IMAGES}
            rows.append((f"{fault.id}-into-{variant}", variant, pipe, V.decoder_of(variant), overrides, labels))
    return rows


ROWS = _matrix_rows()


def test_the_rows_are_the_fault_matrix_preprocessing_rows():
    matrix = {f.id for f in faults.FAULTS if f.gate == "preprocessing"}
    assert {r[0] for r in ROWS} == matrix


@pytest.mark.parametrize("row_id,claim,pipe,decoder,overrides,labels", ROWS, ids=[r[0] for r in ROWS])
def test_each_fault_of_the_matrix_is_named(row_id, claim, pipe, decoder, overrides, labels, images, tmp_path):
    prepared = write(tmp_path / "bin", images, pipe, decoder, overrides=overrides)
    result = check_inputs.check(MODEL, images, prepared, claim)
    named = {r.item.image.name: r.explanation.label for r in result.files}
    assert named == labels, "\n".join(result.lines())
    assert all(r.explanation.level == "bit-exact" for r in result.files)
    assert result.exit_code == 1            # neither the claimed flow nor the reference


def test_untouched_ascend_bins_are_named_ascend_and_pass_their_claim(images, tmp_path, capsys):
    prepared = write(tmp_path / "ascend", images, flow("ascend-modelzoo"), "pil")
    argv = ["check-inputs", "--model", MODEL, "--images", str(images), "--prepared", str(prepared)]
    assert cli.main([*argv, "--variant", "ascend-modelzoo"]) == 0
    out = capsys.readouterr().out
    assert f"summary {prepared}: 3 files: exact ascend-modelzoo" in out
    assert "verdict: all 3 file(s) match ascend-modelzoo" in out
    for line in (ln for ln in out.splitlines() if ln.startswith("  ") and ".bin" in ln):   # distances to every flow
        assert re.search(r"\|  reference [0-9.e-]+/[0-9.e-]+  ascend-modelzoo 0/0  vacc-vamp [0-9.]+/[0-9.]+  "
                         r"vacc-vsx [0-9.]+/[0-9.]+  timm-eval [0-9.]+/[0-9.]+$", line), line
    # without a claim the files are judged against the reference: they are not it, and say what they are
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "exact ascend-modelzoo, bit-exact; = the reference with the fault-matrix fault truncating-crop-offset" in out
    assert "3 of 3 file(s) do not match the reference" in out


def test_reference_files_pass_any_claim_with_a_note(images, tmp_path, capsys):
    prepared = write(tmp_path / "ref", images, V.build("reference", MODEL), "pil", fmt="npy")
    assert cli.main(["check-inputs", "--model", MODEL, "--images", str(images), "--prepared", str(prepared),
                     "--variant", "vacc-vsx"]) == 0
    assert "3 match the reference, not the claimed vacc-vsx" in capsys.readouterr().out


def test_mixed_folder_summary_and_a_file_two_faults_away_is_unexplained(images, tmp_path, capsys):
    prepared = write(tmp_path / "lab", images, flow("ascend-modelzoo"), "pil")
    two_faults = planted.plant(flow("ascend-modelzoo"), planted.Change(resize=343, channels_reversed=True))
    bgr = planted.plant(flow("ascend-modelzoo"), planted.Change(channels_reversed=True))
    img = decode(images / IMAGES[0], "pil")
    writers.write_tensor(prepared / writers.bin_name(IMAGES[0]), two_faults(img), "bin")
    writers.write_tensor(prepared / writers.bin_name(IMAGES[1]), bgr(decode(images / IMAGES[1], "pil")), "bin")
    assert cli.main(["check-inputs", "--model", MODEL, "--images", str(images), "--prepared", str(prepared),
                     "--variant", "ascend-modelzoo"]) == 1
    out = capsys.readouterr().out
    assert (f"summary {prepared}: 1 file: ascend-modelzoo + bgr-channel-order; 1 file: exact ascend-modelzoo; "
            "1 file: unexplained") in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(writers.bin_name(IMAGES[0])))
    assert "unexplained" in line and "ascend-modelzoo 1." in line      # the numbers, not only the word


def test_float16_and_float64_files_match_at_their_rounding(images, tmp_path):
    pipe = V.build("reference", MODEL)
    folder = tmp_path / "npy"
    folder.mkdir()
    img = decode(images / IMAGES[0], "pil")
    np.save(folder / "rgb_landscape_500x375.npy", pipe(img).astype(np.float16))
    np.save(folder / "cmyk_360x270.npy", pipe(decode(images / IMAGES[1], "pil")).astype(np.float64)[None])
    result = check_inputs.check(MODEL, images, folder)
    levels = {r.item.path.name: r.explanation.text() for r in result.files}
    assert levels == {"rgb_landscape_500x375.npy": "exact reference, at float16 rounding",
                      "cmyk_360x270.npy": "exact reference, at float32 rounding"}
    assert result.exit_code == 0


def test_npz_files_are_compared_with_the_image_the_vacc_host_hands_the_card(images, tmp_path):
    good = write(tmp_path / "npz" / "n01440764", images, VampInput(), "cv2", fmt="npz")
    result = check_inputs.check(MODEL, images, good.parent)
    assert {r.explanation.label for r in result.files} == {"exact vacc-vamp"} and result.exit_code == 0
    assert all("card's vdsp op on this npz vs reference" in r.distances for r in result.files)
    bad = write(tmp_path / "bad" / "n01440764", images, planted.plant(VampInput(), planted.Change(channels_reversed=True)),
                "cv2", fmt="npz")
    assert {r.explanation.label for r in check_inputs.check(MODEL, images, bad.parent).files} == {
        "vacc-vamp + bgr-channel-order"}
    pil = write(tmp_path / "pil" / "n01440764", images, VampInput(), "pil", fmt="npz")
    named = {r.item.image.name: r.explanation.label for r in check_inputs.check(MODEL, images, pil.parent).files}
    assert named == {IMAGES[0]: "exact vacc-vamp", IMAGES[1]: "vacc-vamp + other-decoder",
                     IMAGES[2]: "vacc-vamp + other-decoder"}           # the CMYK conversion, the EXIF rotation


def test_the_decoded_images_are_cached(images, tmp_path, monkeypatch):
    prepared = write(tmp_path / "bin", images, flow("vacc-vsx"), "cv2")
    calls = []
    real = explain.decode
    monkeypatch.setattr(explain, "decode", lambda path, decoder: calls.append((path, decoder)) or real(path, decoder))
    explain.Explainer._decoded_once.cache_clear()
    check_inputs.check(MODEL, images, prepared, "vacc-vsx")
    assert sorted(calls) == sorted(set(calls)) and len(calls) <= 2 * len(IMAGES)    # once per image and decoder


def test_the_full_fault_search_stops_after_a_few_unexplained_files(images, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    for i in range(explain.FULL_SEARCHES + 2):
        shutil.copy(images / IMAGES[0], src / f"img{i}.jpg")
    noise = np.random.default_rng(0).standard_normal((3, 299, 299)).astype(np.float32)
    for i in range(explain.FULL_SEARCHES + 2):
        writers.write_tensor(folder / f"img{i}.bin", noise, "bin")
    result = check_inputs.check(MODEL, src, folder)
    assert [r.full_search for r in result.files] == [True] * explain.FULL_SEARCHES + [False, False]
    assert {r.explanation.label for r in result.files} == {"unexplained"}
    assert any("were tried against the faults found so far only" in line for line in result.lines())


def test_vdsp_params_come_from_the_option_or_the_model_zoo_file(images, tmp_path):
    prepared = write(tmp_path / "bin", images, flow("vacc-vamp"), "cv2")
    own = tmp_path / "mine-vdsp_params.json"
    shutil.copy(measured.VDSP_DIR / measured.VDSP_FIXTURES[("inception_v4", "inception")], own)
    result = check_inputs.check(MODEL, images, prepared, "vacc-vamp", own)
    assert f"vdsp params from {own}" in result.vdsp_note and result.exit_code == 0
    result = check_inputs.check(MODEL, images, prepared, "vacc-vamp")
    assert "the model zoo's vdsp params for inception_v4" in result.vdsp_note and result.exit_code == 0


@pytest.mark.parametrize("case,message", [
    ("images-missing", "--images: folder not found"),
    ("no-prepared-files", "no prepared files"),
    ("bin-size", "is no float32 (3, S, S) tensor"),
    ("npz-key", "no key 'input_0'"),
    ("npz-hwc", "image2npz.py writes uint8 (3, H, W)"),
    ("npy-pickled", "cannot read this .npy file"),
    ("no-image", "no image named ghost.* under"),
    ("two-images", "two images could be its source"),
    ("vdsp-other-model", "224x224, but inception_v4 takes 299x299"),
    ("vamp-claim-without-params", "--variant vacc-vamp is driven by the build's vdsp_params JSON"),
    ("npz-with-ascend-claim", "--variant ascend-modelzoo writes none"),
])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(case, message, images, tmp_path, capsys):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    src, model, extra = images, MODEL, []
    good = flow("ascend-modelzoo")(decode(images / IMAGES[0], "pil"))
    named = prepared / "rgb_landscape_500x375.bin"
    if case != "no-prepared-files":
        writers.write_tensor(named, good, "bin")
    if case == "images-missing":
        src = tmp_path / "nowhere"
    elif case == "bin-size":
        named.write_bytes(named.read_bytes()[:-4])
    elif case == "npz-key":
        named = prepared / "rgb_landscape_500x375.npz"
        np.savez(named, image=np.zeros((3, 4, 4), np.uint8))
    elif case == "npz-hwc":
        named = prepared / "rgb_landscape_500x375.npz"
        np.savez(named, input_0=np.zeros((4, 4, 3), np.uint8))
    elif case == "npy-pickled":
        named = prepared / "cmyk_360x270.npy"
        np.save(named, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "no-image":
        named = prepared / "ghost.bin"
        writers.write_tensor(named, good, "bin")
    elif case == "two-images":
        src = tmp_path / "src"
        shutil.copytree(images, src)
        shutil.copy(images / IMAGES[0], src / "rgb_landscape_500x375.png")
    elif case == "vdsp-other-model":
        extra = ["--vdsp-params", str(measured.VDSP_DIR / measured.VDSP_FIXTURES[("iresnet", "imagenet")])]
    elif case == "vamp-claim-without-params":
        model, extra = "inception_v4_mindspore", ["--variant", "vacc-vamp"]
    elif case == "npz-with-ascend-claim":
        named = prepared / "rgb_landscape_500x375.npz"
        writers.write_npz_image(named, VampInput()(decode(images / IMAGES[0], "cv2")))
        extra = ["--variant", "ascend-modelzoo"]
    rc = cli.main(["check-inputs", "--model", model, "--images", str(src), "--prepared", str(prepared), *extra])
    captured = capsys.readouterr()
    assert rc == 2, captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    if case in ("bin-size", "npz-key", "npz-hwc", "npy-pickled", "no-image", "npz-with-ascend-claim"):
        assert str(named) in lines[0]
    if case == "images-missing":
        assert str(src) in lines[0]


def test_check_inputs_changes_nothing_it_was_given(images, tmp_path):
    """Nothing the user gave is modified: the images and the prepared files are as they were."""
    prepared = write(tmp_path / "bin", images, flow("ascend-modelzoo"), "pil")
    before = {p: p.read_bytes() for folder in (images, prepared) for p in folder.rglob("*") if p.is_file()}
    check_inputs.check(MODEL, images, prepared, "ascend-modelzoo")
    assert {p: p.read_bytes() for folder in (images, prepared) for p in folder.rglob("*") if p.is_file()} == before


def test_an_unknown_claim_is_refused(images):
    with pytest.raises(ZoogateError, match="unknown variant"):
        check_inputs.check(MODEL, images, images, "vacc-vdsp")      # gone: the VACC flows are vacc-vamp, vacc-vsx


def test_benchmark_check_inputs_against_preprocessing_the_same_images(benchmark, tmp_path):
    """How many times one preprocessing of the images a check of healthy files costs (recorded, not
    asserted: the host is shared); the check must name every file."""
    import time

    from zoogate import synthetic

    src = tmp_path / "val"
    src.mkdir()
    for i, img in enumerate(synthetic.images(40, seed=321)):
        img.save(src / f"ILSVRC2012_val_{i + 1:08d}.JPEG", quality=90)
    ascend = flow("ascend-modelzoo")
    t0 = time.perf_counter()
    prepared = write(tmp_path / "bin", src, ascend, "pil")
    preprocess_s = time.perf_counter() - t0
    explain.Explainer(MODEL)                  # imports timm (the timm-eval flow) outside the timing
    explain.Explainer._decoded_once.cache_clear()
    result = benchmark.pedantic(lambda: check_inputs.check(MODEL, src, prepared, "ascend-modelzoo"),
                                rounds=1, iterations=1)
    assert {r.explanation.label for r in result.files} == {"exact ascend-modelzoo"} and len(result.files) == 40
    stats = getattr(benchmark, "stats", None)
    if stats is not None and preprocess_s > 0:
        ratio = stats.stats.mean / preprocess_s
        benchmark.extra_info["ratio_vs_one_preprocessing"] = round(ratio, 2)
        print(f"\ncheck-inputs on 40 healthy .bin files: {ratio:.1f}x one ascend-modelzoo preprocessing of the "
              f"images ({stats.stats.mean * 1e3 / 40:.1f} vs {preprocess_s * 1e3 / 40:.1f} ms/file)")
    benchmark.extra_info["files"] = 40
