"""Scoring the VACC Relay top-k TXT (zoogate.results_vacc): by class index, and by class name as the model
zoo's eval_topk counts it.

Facts the tests encode (the files are written here by our own writers, never copied):
- 5 lines per image, ``<path>: Relay top-<k> id: <N>, prob: <P:.8f>, class name: <name>``, k = 0..4; the
  classification sample appends, so a rerun adds a second block for the same image.
- the class list is one name per line (0-based line = class index), 1000 lines; in the model zoo's copy
  index 480 is cut after "automated teller", and 134 and 517 are both "crane".
- eval_topk's truth is the full ImageNet name of the image's synset folder; its prediction is the
  printed name; equal strings count.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoogate.cli import main
from zoogate.datasets import labels_by_stem, write_label_file
from zoogate.errors import ZoogateError
from zoogate.results import score_folder
from zoogate.results_vacc import imagenet_info, read_relay
from zoogate.vendor_writers import write_relay_txt

SYNSETS, FULL = imagenet_info()
CRANE_BIRD, CRANE_MACHINE, ATM = 134, 517, 480


def class_names(truncated_atm: bool = True) -> list[str]:
    names = [FULL[s] for s in SYNSETS]
    if truncated_atm:
        names[ATM] = names[ATM].rsplit(", ", 2)[0]       # "... automatic teller machine, automated teller"
    return names


def write_class_list(folder: Path, names: list[str] | None = None) -> Path:
    path = folder / "imagenet.txt"
    path.write_text("\n".join(names or class_names()))           # no trailing newline, like the model zoo file
    return path


def scores_for(top5) -> np.ndarray:
    """A score vector whose top-5 classes are `top5`, best first."""
    x = np.zeros(1000)
    x[list(top5)] = np.linspace(0.9, 0.5, len(top5))
    return x


def image_path(cls: int, n: int, root: str = "/data/ILSVRC2012_img_val") -> str:
    return f"{root}/{SYNSETS[cls]}/ILSVRC2012_val_{n:08d}.JPEG"


def relay(tmp_path: Path, images: list[tuple[int, list[int]]], names: list[str] | None = None, **kw) -> Path:
    """A Relay TXT: one (true class, predicted top-5) per image, in a synset folder of its class."""
    return write_relay_txt(tmp_path / "result.txt", [image_path(c, i + 1) for i, (c, _) in enumerate(images)],
                           np.stack([scores_for(p) for _, p in images]), names or class_names(), **kw)


def score_cli(*args: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(["score", *args])
    return code, buf.getvalue()


def test_the_class_list_facts_hold_for_the_names_written_here():
    names = class_names()
    assert len(names) == 1000 and names[CRANE_BIRD] == names[CRANE_MACHINE] == "crane"
    assert names[ATM].endswith("automated teller") and FULL[SYNSETS[ATM]].endswith("automatic teller, ATM")
    assert SYNSETS == sorted(SYNSETS) and SYNSETS[ATM] == "n02977058" and SYNSETS[CRANE_BIRD] == "n02012849"


def test_written_lines_have_the_sample_format(tmp_path):
    path = relay(tmp_path, [(0, [0, 1, 2, 3, 4])])
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    assert lines[0] == (f"{image_path(0, 1)}: Relay top-0 id: 0, prob: 0.90000000, class name: tench, Tinca tinca")
    assert lines[4].startswith(f"{image_path(0, 1)}: Relay top-4 id: 4, prob: 0.50000000, class name: ")


@st.composite
def relay_runs(draw):
    n = draw(st.integers(1, 12))
    classes = st.sampled_from([0, 1, 2, CRANE_BIRD, CRANE_MACHINE, ATM, 999])
    images = []
    for _ in range(n):
        truth = draw(classes)
        top5 = draw(st.lists(classes | st.integers(0, 999), min_size=5, max_size=5, unique=True))
        images.append((truth, top5))
    return images


@settings(max_examples=25, deadline=None)
@given(images=relay_runs())
def test_by_index_and_by_name_equal_a_hand_count(images):
    names = class_names()
    with tempfile.TemporaryDirectory() as tmp:
        path = relay(Path(tmp), images)
        scored = score_folder(path, None, class_list=write_class_list(Path(tmp)))
    by_index = [sum(truth in top5[:k] for truth, top5 in images) for k in range(1, 6)]
    by_name = [sum(FULL[SYNSETS[truth]] in [names[c] for c in top5[:k]] for truth, top5 in images) for k in (1, 5)]
    assert list(scored.summary.hits) == by_index
    assert (scored.by_name.top1_hits, scored.by_name.top5_hits, scored.by_name.blocks) == (*by_name, len(images))


def test_crane_and_atm_make_the_name_count_differ_and_say_why(tmp_path):
    images = [(CRANE_BIRD, [CRANE_MACHINE, 1, 2, 3, 4]),     # the other crane: right by name only
              (ATM, [ATM, 1, 2, 3, 4]),                       # right by index; its printed name is truncated
              (7, [7, 1, 2, 3, 4])]
    path = relay(tmp_path, images)
    code, out = score_cli("--model", "inception_v4", "--results", str(path), "--class-list",
                          str(write_class_list(tmp_path)), "--rich-out", str(tmp_path / "rich.json"),
                          "--allow-inconclusive")
    assert code == 0, out
    assert "top-1     : 66.667 %  (2/3;" in out
    assert "by name   : top1_rate 66.667 top5_rate 66.667 (3 blocks)" in out
    assert ("top-1: 1 image(s) counted by index but not by name: the printed name of their class is not its full "
            "ImageNet name, which eval_topk compares with (class 480 printed 'cash machine") in out
    assert "top-1: 1 image(s) counted by name but not by index: a class with the same name was predicted ('crane': " \
           "predicted 517, truth 134)" in out
    assert "class list: 'crane' names classes 134 and 517" in out and "class list: index 480 (n02977058)" in out
    rich = json.loads((tmp_path / "rich.json").read_text())["by_name_eval_topk"]
    assert (rich["top1_rate"], rich["top5_rate"], rich["blocks"]) == (66.667, 66.667, 3)
    assert len(rich["differences"]) == 4                  # top-1 and top-5, each: by index only, by name only


def test_the_full_class_names_make_the_two_counts_agree_but_for_the_cranes(tmp_path):
    images = [(ATM, [ATM, 1, 2, 3, 4]), (7, [7, 1, 2, 3, 4])]
    path = relay(tmp_path, images, names=class_names(truncated_atm=False))
    scored = score_folder(path, None, class_list=write_class_list(tmp_path, class_names(truncated_atm=False)))
    assert scored.summary.hits[0] == 2 and scored.by_name.top1_hits == 2 and scored.by_name.differences == []


def test_a_rerun_appended_to_the_file_is_counted_once_and_said(tmp_path):
    images = [(3, [3, 1, 2, 4, 5]), (8, [9, 8, 2, 4, 5])]
    relay(tmp_path, images)
    path = relay(tmp_path, images, append=True)
    scored = score_folder(path, None)
    assert scored.summary.n == 2 and scored.summary.hits[0] == 1
    assert any("2 image(s) have repeated identical blocks (2 extra" in n and "appended to by a rerun" in n
               for n in scored.results.notes)
    assert scored.by_name.blocks == 4 and scored.by_name.top1_hits == 2       # eval_topk counts every block
    assert any("eval_topk counts 4 blocks for 2 images" in d for d in scored.by_name.differences)


def test_a_rerun_with_other_classes_names_both_lines(tmp_path):
    relay(tmp_path, [(3, [3, 1, 2, 4, 5])])
    path = relay(tmp_path, [(3, [1, 3, 2, 4, 5])], append=True)
    with pytest.raises(ZoogateError, match=r"line 6: a second block for .* \(first at line 1\) with other classes") as err:
        read_relay(path)
    assert str(err.value).startswith(str(path))


@pytest.mark.parametrize("damage, message", [
    (lambda t: t.rsplit("\n", 3)[0] + "\n", r"8 lines is not 5 per image: the block from line 6 is cut short"),
    (lambda t: t.replace("Relay top-2", "Relay top-3", 1), r"line 3: top-3 where top-2 belongs"),
    (lambda t: t.replace(" id: 2,", " id: 1000,", 1), r"line 3: class id 1000 out of range 0..999"),
    (lambda t: t.replace("prob: 0.80000000", "prob: x", 1), r"line 2: prob 'x' is not a number"),
    (lambda t: "garbage\n" + t, r"line 1: not a Relay top-k line"),
], ids=["cut-short", "wrong-k", "id-range", "prob", "not-relay"])
def test_damaged_files_name_the_line(tmp_path, damage, message):
    path = relay(tmp_path, [(3, [3, 1, 2, 4, 5]), (4, [4, 1, 2, 3, 5])])
    path.write_text(damage(path.read_text()))
    with pytest.raises(ZoogateError, match=message) as err:
        score_folder(path, None)
    assert str(err.value).startswith(str(path))


def test_printed_names_are_checked_against_the_class_list(tmp_path):
    names = class_names()
    other = list(names)
    other[2] = "not the model zoo name"
    path = relay(tmp_path, [(3, [3, 1, 2, 4, 5])], names=other)
    with pytest.raises(ZoogateError, match=r"line 3: class 2 is printed as 'not the model zoo name', but .*imagenet.txt "
                                           r"line 3 names it 'great white shark"):
        score_folder(path, None, class_list=write_class_list(tmp_path, names))
    unchecked = score_folder(path, None)
    assert "class names not checked: pass --class-list FILE" in unchecked.results.notes[-1]


def test_class_list_of_the_wrong_length_is_refused(tmp_path):
    path = relay(tmp_path, [(3, [3, 1, 2, 4, 5])])
    short = tmp_path / "short.txt"
    short.write_text("\n".join(class_names()[:999]))
    with pytest.raises(ZoogateError, match="999 class names: expected 1000"):
        score_folder(path, None, class_list=short)


def test_without_labels_a_parent_folder_must_be_a_synset(tmp_path):
    path = write_relay_txt(tmp_path / "r.txt", ["/data/val/ILSVRC2012_val_00000001.JPEG"], [scores_for([1, 2, 3, 4, 5])],
                           class_names())
    with pytest.raises(ZoogateError, match="line 1: parent folder 'val' of .* is not an ImageNet synset .*: pass --labels"):
        score_folder(path, None)


def test_a_flat_folder_scores_by_index_with_a_label_file_and_says_why_not_by_name(tmp_path):
    path = write_relay_txt(tmp_path / "r.txt", [f"/data/val/ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2)],
                           [scores_for([1, 2, 3, 4, 5]), scores_for([6, 7, 8, 9, 10])], class_names())
    labels, _ = labels_by_stem(write_label_file(tmp_path / "val_label.txt", [("ILSVRC2012_val_00000001.JPEG", 1),
                                                                             ("ILSVRC2012_val_00000002.JPEG", 8)]))
    scored = score_folder(path, labels)
    assert scored.summary.hits[0] == 1 and scored.summary.hits[4] == 2
    assert not scored.by_name.available and "it would stop with a KeyError" in scored.by_name.why_not


def test_labels_must_cover_the_file_and_the_file_the_labels(tmp_path):
    path = relay(tmp_path, [(3, [3, 1, 2, 4, 5])])
    labels = {"ILSVRC2012_val_00000001": 3, "ILSVRC2012_val_00000002": 4}
    with pytest.raises(ZoogateError, match="no Relay block for labelled image 'ILSVRC2012_val_00000002'"):
        score_folder(path, labels)
    assert score_folder(path, labels, allow_subset=True).summary.n == 1
    with pytest.raises(ZoogateError, match="line 1: image 'ILSVRC2012_val_00000001' has no label"):
        score_folder(path, {"ILSVRC2012_val_00000009": 3})


def _class_folders(root: Path, synsets: list[str], images: dict[str, str]) -> Path:
    for s in synsets:
        (root / s).mkdir(parents=True)
    for name, s in images.items():
        (root / s / name).write_bytes(b"")
    return root


def test_class_folder_labels_need_every_synset_folder(tmp_path):
    images = [(3, [3, 1, 2, 4, 5]), (ATM, [ATM, 1, 2, 3, 4])]
    path = relay(tmp_path, images)
    names = {f"ILSVRC2012_val_{i + 1:08d}.JPEG": SYNSETS[c] for i, (c, _) in enumerate(images)}
    some = _class_folders(tmp_path / "some", sorted(set(names.values())), names)
    with pytest.raises(ZoogateError, match="the class folders are 2 of the 1000 ImageNet synsets: their sorted position "
                                           "is not the class index"):
        score_folder(path, labels_by_stem(some)[0], labels_source=str(some))
    every = _class_folders(tmp_path / "every", SYNSETS, names)
    scored = score_folder(path, labels_by_stem(every)[0])
    assert scored.summary.hits[0] == 2


def test_the_vamp_decoder_form_with_npz_paths_scores_the_same(tmp_path):
    images = [(5, [5, 1, 2, 3, 4]), (6, [1, 6, 2, 3, 4])]
    paths = [f"/work/input_npz/{SYNSETS[c]}/ILSVRC2012_val_{i + 1:08d}.npz" for i, (c, _) in enumerate(images)]
    path = write_relay_txt(tmp_path / "imagenet_result.txt", paths, [scores_for(p) for _, p in images], class_names())
    scored = score_folder(path, None)
    assert scored.results.kind == "vacc relay" and list(scored.summary.hits[:2]) == [1, 2]
    assert scored.results.stems == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]
