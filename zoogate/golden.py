"""Golden I/O: reference inputs and outputs a lab can replay on a device runner, then score with the comparator.

Layout of a golden directory (the ONNX model-zoo test-data layout, plus .npy copies and a manifest)::

    DIR/manifest.json                    what produced it: model, weights, preprocessing, versions, seed, shapes,
                                         and the BuildIdentity of the reference build ("build")
    DIR/test_data_set_0/input_0.pb       onnx TensorProto, float32 NCHW, named like the graph input ("image")
    DIR/test_data_set_0/output_0.pb      onnx TensorProto, float32 (N, C), named like the graph output ("class")
    DIR/input_0.npy, DIR/output_0.npy    the same arrays as .npy
    DIR/model.onnx                       only with ``with_onnx=True``: the export the outputs belong to

A runner's outputs are read from a folder holding ``output_0.npy`` / ``output_0.pb`` (or
``test_data_set_0/output_0.pb``, or exactly one .npy/.pb file), or from a file path. Given the build the
outputs claim to come from (``expected_build(model, weights)``), a golden set of another model, weights or
preprocessing is refused (BuildMismatch) before any comparison.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from zoogate import __version__, cache
from zoogate.compare import Comparison, compare
from zoogate.gates.agreement import agreement_gate
from zoogate.errors import ZoogateError
from zoogate.identity import BuildIdentity, BuildMismatch, differences
from zoogate.record import GateRecord

MANIFEST = "manifest.json"
DATA_SET = "test_data_set_0"
FORMAT = "zoogate-golden/1"
DEFAULT_TOLERANCE = "fp32_cross_backend"
BUILD_FIELDS = ("model", "weights", "preprocess")     # what a golden set's outputs depend on


@dataclass
class Golden:
    directory: Path
    inputs: np.ndarray
    outputs: np.ndarray
    manifest: dict

    @property
    def build(self) -> BuildIdentity | None:
        """The identity of the build that produced the outputs (None for sets written before identities)."""
        return BuildIdentity.from_dict(self.manifest.get("build"))


def _versions() -> dict[str, str]:
    import onnxruntime

    return {**cache.versions(), "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "zoogate": __version__}


# ------------------------------------------------------------------ tensors on disk

def save_tensor(array: np.ndarray, path: str | os.PathLike, name: str = "") -> Path:
    """Write ``array`` as .npy or as an onnx TensorProto (.pb), chosen by the suffix."""
    from onnx import numpy_helper

    path = Path(path)
    if path.suffix == ".npy":
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
    elif path.suffix == ".pb":
        path.write_bytes(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())
    else:
        raise ZoogateError("expected a .npy or .pb file name", path)
    return path


def load_tensor(path: str | os.PathLike) -> np.ndarray:
    """Read a .npy (never unpickling) or an onnx TensorProto .pb; ZoogateError for anything unreadable."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise ZoogateError("file not found", path)
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ZoogateError(f"not a readable .npy array ({exc})", path) from None
    if path.suffix == ".pb":
        proto = onnx.TensorProto()
        try:
            proto.ParseFromString(path.read_bytes())
        except (DecodeError, ValueError, TypeError, OSError) as exc:
            raise ZoogateError(f"not a readable ONNX TensorProto ({exc})", path) from None
        if proto.data_location == onnx.TensorProto.EXTERNAL or len(proto.external_data):
            where = next((e.value for e in proto.external_data if e.key == "location"), "?")
            raise ZoogateError(f"TensorProto keeps its data in an external file ({where!r}); refusing to read "
                               "files it points to: golden tensors hold their data inline", path)
        try:
            array = numpy_helper.to_array(proto)
        except (DecodeError, ValueError, TypeError, OSError) as exc:
            raise ZoogateError(f"not a readable ONNX TensorProto ({exc})", path) from None
        if not proto.dims or array.size == 0:
            raise ZoogateError("not a readable ONNX TensorProto (no dimensions or no data)", path)
        return array
    raise ZoogateError("expected a .npy or .pb file", path)


# ------------------------------------------------------------------ writing

def _golden_version(manifest) -> int | None:
    """The version of a zoogate golden manifest ("zoogate-golden/<N>"), else None."""
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    schema, _, version = fmt.partition("/") if isinstance(fmt, str) else ("", "", "")
    return int(version) if schema == FORMAT.partition("/")[0] and version.isdigit() and int(version) >= 1 else None


def _check_replaceable(directory: Path) -> None:
    """--force replaces a folder only when it is a zoogate golden set and holds nothing else: a manifest of
    our schema (any version), and no file the manifest does not list (a user's notes would be lost)."""
    refuse = "refusing to replace: "
    if directory.is_symlink():
        raise ZoogateError(refuse + "it is a symbolic link; give the folder itself", directory)
    mpath = directory / MANIFEST
    if not mpath.is_file():
        raise ZoogateError(refuse + f"not empty and not a golden set (no {MANIFEST})", directory)
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ZoogateError(refuse + f"{MANIFEST} is not readable JSON ({exc}), so this is not a golden set",
                           mpath) from None
    if _golden_version(manifest) is None:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ZoogateError(refuse + f"{MANIFEST} is not a zoogate golden manifest (format {found!r}, expected "
                           f"{FORMAT!r})", mpath)
    listed = set(manifest["files"]) if isinstance(manifest.get("files"), dict) else set()
    listed |= {MANIFEST} | {str(parent) for rel in listed for parent in Path(rel).parents if str(parent) != "."}
    others = sorted(rel for rel in (str(p.relative_to(directory)) for p in directory.rglob("*")) if rel not in listed)
    if others:
        shown = ", ".join(others[:5]) + (f", ... ({len(others)} in all)" if len(others) > 5 else "")
        raise ZoogateError(refuse + f"it holds files that are not part of the golden set ({shown}); move them "
                           "out first", directory)


def _check_target(directory: str | os.PathLike, force: bool) -> Path:
    """A golden set goes into a new or empty folder; with ``force``, over a previous golden set only."""
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise ZoogateError("exists and is not a directory", directory)
        if any(directory.iterdir()):
            if not force:
                raise ZoogateError("directory is not empty; choose a new one (or --force to replace a golden set)",
                                   directory)
            _check_replaceable(directory)
    return directory


def write_golden(directory: str | os.PathLike, inputs: np.ndarray, outputs: np.ndarray, manifest: dict, *,
                 input_name: str = "image", output_name: str = "class", force: bool = False,
                 onnx_model: str | os.PathLike | None = None) -> Path:
    """Write a golden set (see the module docstring). Refuses a non-empty ``directory`` unless ``force``;
    with ``force`` only a previous golden set (one with a manifest) is replaced."""
    directory = _check_target(directory, force)
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    outputs = np.ascontiguousarray(outputs, dtype=np.float32)
    if inputs.shape[0] != outputs.shape[0]:
        raise ValueError(f"inputs {inputs.shape} and outputs {outputs.shape} hold different numbers of images")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()          # (not mkdtemp: its 0700 mode would stick to the published folder)
    try:
        (tmp / DATA_SET).mkdir()
        files = {
            f"{DATA_SET}/input_0.pb": save_tensor(inputs, tmp / DATA_SET / "input_0.pb", input_name),
            f"{DATA_SET}/output_0.pb": save_tensor(outputs, tmp / DATA_SET / "output_0.pb", output_name),
            "input_0.npy": save_tensor(inputs, tmp / "input_0.npy"),
            "output_0.npy": save_tensor(outputs, tmp / "output_0.npy"),
        }
        if onnx_model is not None:
            shutil.copyfile(onnx_model, tmp / "model.onnx")
            files["model.onnx"] = tmp / "model.onnx"
        full = {
            "format": FORMAT,
            **manifest,
            "input": {"name": input_name, "shape": list(inputs.shape), "dtype": "float32", "layout": "NCHW"},
            "output": {"name": output_name, "shape": list(outputs.shape), "dtype": "float32"},
            "files": {rel: cache.sha256_file(p) for rel, p in files.items()},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST).write_text(json.dumps(full, indent=1, sort_keys=True, default=str))
        previous = None
        if directory.exists():       # empty, or (force) a previous golden set: swap it out, then delete it
            previous = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:12]}.previous")
            directory.rename(previous)
        try:
            tmp.rename(directory)
        except BaseException:
            if previous is not None and not directory.exists():
                previous.rename(directory)   # put the previous set back where it was
            raise
        if previous is not None:
            shutil.rmtree(previous)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


def make_golden(model_name: str, directory: str | os.PathLike, *, n: int = 4, seed: int = 0,
                weights: str | os.PathLike | None = None, force: bool = False, with_onnx: bool = False,
                input_name: str = "image", output_name: str = "class") -> Path:
    """Golden set for a registry model: ``n`` generated images (seed ``seed``) through its reference
    preprocessing, and PyTorch eager outputs with calibrated (or ``weights``) weights."""
    import torch

    from zoogate import synthetic
    from zoogate.preprocess.reference import preprocess_batch
    from zoogate.weights import load_model

    if n < 1:
        raise ZoogateError(f"--n must be >= 1, got {n}")
    _check_target(directory, force)      # before the (slow) model work
    from hardware.torch_runner import TorchRunner
    from zoogate.identity import of_runner

    loaded = load_model(model_name, weights=weights)
    spec = loaded.baseline.preprocess
    inputs = preprocess_batch(synthetic.images(n, seed=seed), spec)
    with torch.no_grad():
        outputs = loaded.module(torch.from_numpy(inputs)).float().numpy()
    build = of_runner(TorchRunner().load(loaded, n), model=model_name, preprocess=spec.describe(),
                      dataset=f"zoogate.synthetic.images n={n} seed={seed}")
    onnx_model = None
    if with_onnx:
        from zoogate.export import export_onnx

        onnx_model = export_onnx(loaded, input_name=input_name, output_name=output_name)
    manifest = {
        "model": model_name,
        "num_classes": loaded.baseline.num_classes,
        "weights": {"id": loaded.weights_id, "origin": loaded.origin},
        "reference": "PyTorch eager, float32, CPU",
        "preprocessing": {"description": spec.describe(), **asdict(spec)},
        "images": {"generator": "zoogate.synthetic.images", "n": n, "seed": seed},
        "seed": seed,
        "versions": _versions(),
        "build": build.to_dict(),
    }
    return write_golden(directory, inputs, outputs, manifest, input_name=input_name, output_name=output_name,
                        force=force, onnx_model=onnx_model)


# ------------------------------------------------------------------ reading and scoring

def read_golden(directory: str | os.PathLike, *, verify: bool = True) -> Golden:
    """Read a golden set back; with ``verify`` every file's sha256 must match the manifest."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ZoogateError("golden directory not found", directory)
    mpath = directory / MANIFEST
    if not mpath.is_file():
        raise ZoogateError(f"not a golden set: no {MANIFEST} (make one with `zoogate golden`)", directory)
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ZoogateError(f"unreadable manifest ({exc})", mpath) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ZoogateError(f"not a {FORMAT} manifest", mpath)
    if verify:
        for rel, digest in manifest.get("files", {}).items():
            path = directory / rel
            if not path.is_file():
                raise ZoogateError("golden file listed in the manifest is missing", path)
            if cache.sha256_file(path) != digest:
                raise ZoogateError("golden file changed since it was written (sha256 differs from the manifest)",
                                   path)
    inputs = load_tensor(directory / DATA_SET / "input_0.pb")
    outputs = load_tensor(directory / DATA_SET / "output_0.pb")
    for what, arr in (("input", inputs), ("output", outputs)):
        want = tuple(manifest.get(what, {}).get("shape", ()))
        if tuple(arr.shape) != want:
            raise ZoogateError(f"{what}_0.pb has shape {tuple(arr.shape)}, the manifest says {want}",
                               directory / DATA_SET)
    return Golden(directory, inputs, outputs, manifest)


def find_outputs(path: str | os.PathLike) -> Path:
    """The outputs file in a runner's output folder (or ``path`` itself when it is a file)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ZoogateError("outputs not found (expected a folder or a .npy/.pb file)", path)
    for rel in ("output_0.npy", "output_0.pb", f"{DATA_SET}/output_0.pb"):
        if (path / rel).is_file():
            return path / rel
    found = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".pb") and p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise ZoogateError("no outputs here: expected output_0.npy or output_0.pb", path)
    raise ZoogateError(f"several candidate output files ({', '.join(p.name for p in found[:5])}); "
                       "name the one to score as output_0.npy / output_0.pb or pass the file", path)


def read_outputs(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A runner's outputs; a flat array of the golden size is reshaped to ``shape`` (devices often dump flat)."""
    file = find_outputs(path)
    arr = load_tensor(file)
    if shape is not None and arr.ndim == 1 and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ZoogateError(f"outputs have shape {tuple(arr.shape)}, the golden set has {tuple(shape)}", file)
    return arr


def expected_build(model: str, weights: str | os.PathLike | None = None) -> BuildIdentity:
    """The reference build ``zoogate golden --model M [--weights F]`` makes now (fields of BUILD_FIELDS)."""
    from zoogate import baselines
    from zoogate.weights import weights_identity

    identity = weights_identity(model, weights)
    return BuildIdentity(model=model, weights=identity, artifact=identity, runner="torch", precision="fp32",
                         preprocess=baselines.model(model).preprocess.describe())


def check_build(golden: Golden, expected: BuildIdentity) -> None:
    """BuildMismatch naming what differs when the golden set was made by another model, weights or preprocessing."""
    diffs = differences(golden.build, expected, BUILD_FIELDS)
    if diffs:
        raise BuildMismatch("golden set is from another build", diffs, golden.directory,
                            "; make one of this build with `zoogate golden`")


def describe_build(golden: Golden) -> str:
    build = golden.build
    return build.describe() if build is not None else "not recorded (written before build identities)"


def compare_outputs(golden_dir: str | os.PathLike, outputs: str | os.PathLike,
                    tol_name: str = DEFAULT_TOLERANCE, *, expect: BuildIdentity | None = None) -> Comparison:
    """Score a runner's outputs against a golden set with the comparator (refused for another ``expect`` build)."""
    golden = read_golden(golden_dir)
    if expect is not None:
        check_build(golden, expect)
    candidate = read_outputs(outputs, golden.outputs.shape)
    return compare(golden.outputs, candidate, tol_name, names=(f"golden {golden.manifest.get('model', '?')}",
                                                                str(find_outputs(outputs))))


def golden_gate(golden_dir: str | os.PathLike, outputs: str | os.PathLike, tol_name: str = DEFAULT_TOLERANCE,
                *, runner: str = "-", expect: BuildIdentity | None = None) -> GateRecord:
    """compare_outputs as an agreement GateRecord (for reports)."""
    golden = read_golden(golden_dir)
    if expect is not None:
        check_build(golden, expect)
    candidate = read_outputs(outputs, golden.outputs.shape)
    m = golden.manifest
    record = agreement_gate(m.get("model", "?"), runner, golden.outputs.shape[0], golden.outputs, candidate,
                            tol_name, source=f"golden set {Path(golden_dir)} (weights "
                                             f"{m.get('weights', {}).get('id', '?')})",
                            check="golden", names=("golden", runner))
    record.details["golden_build"] = m.get("build")
    return record
