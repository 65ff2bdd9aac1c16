"""What a backend module declares: its runners (the interface every one implements, the shape of
accuracy_checker's Launcher.predict), the pytest markers of its hardware and how that hardware is detected.

A backend is one module with ``BACKEND = Backend(...)``; hardware.registry finds it (hardware/README.md).
"""

from __future__ import annotations

import abc
import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass
class Timing:
    """Per-call timings. host_s is always measured; device_s only where the backend reports it."""

    host_s: list[float] = field(default_factory=list)
    device_s: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.host_s.clear()
        self.device_s.clear()

    def add_device(self, seconds: float) -> None:
        """Timing hook for backends that report device time (ais_bench exec_time_list, CUDA events)."""
        self.device_s.append(float(seconds))


class Runner(abc.ABC):
    """Load a model artifact for a batch size and turn float32 NCHW batches into float32 (N, C) logits.

    The class attributes are the runner's declaration, read by the registry and the pytest plugin.
    """

    name: str = "runner"               # test ids, --runner, reports
    marker: str | None = None          # the pytest marker its tests carry (a Marker's name); None: runs anywhere
    static_batch: bool = False         # True: the artifact accepts exactly batch_size inputs
    precision: str = "fp32"            # fp32 / fp16 / bf16 / int8: picks the agreement tolerance
    reports_device_time: bool = False  # True: infer() also fills timing.device_s
    # the vendor SDK load() imports: a test double of it (fixtures/doubles) is refused for hardware tests
    vendor_module: str | None = None
    # runner options (``--runner NAME:key=value,...``) -> what each does; others are refused at start-up
    options: dict[str, str] = {}
    # True: ``self.session`` is an onnxruntime InferenceSession, timed bare by the harness-overhead gate
    bare_session: bool = False
    # "logits", or "probabilities" for a build that ends in a softmax (a vamc build with graph.extra_ops
    # softmax): comparisons with a reference's logits softmax the reference first (reference_outputs)
    outputs: str = "logits"
    # A backend that runs the ONNX graph itself (not through ONNX Runtime) sets this to a method
    # ``(ModelProto with every tensor an output, batch) -> {tensor name: array}``: a failed agreement of the
    # runner is then bisected on that backend (zoogate.bisect.attach_to_runner). None: ONNX Runtime runs it.
    intermediate_outputs = None
    # What load() loaded, for build identities (zoogate.identity): "sha256:<hex>" of the artifact file(s),
    # or the weights for the torch runner. None (a runner that does not say) never matches a saved result.
    artifact_id: str | None = None
    artifact_path: str | None = None   # where it was loaded from (messages only)
    weights_identity: str | None = None  # the weights, where the loader knows them apart from the artifact

    def __init__(self) -> None:
        self.timing = Timing()
        self.batch_size: int | None = None
        # True when the loaded artifact has a background class at index 0 (1001 outputs, Cadene /
        # TF-slim InceptionV4 as the Ascend guide exports it). Outputs are returned as-is; callers decide.
        self.background_class: bool = False

    @property
    def build_options(self) -> dict:
        """Runner options that change what the build computes (part of its identity); none by default."""
        return {}

    @property
    def agreement_tolerance(self) -> str:
        """Name of the baselines tolerance for agreement with PyTorch eager fp32 (a subclass may set it
        as a plain class attribute instead)."""
        return {"fp16": "fp16", "int8": "int8"}.get(self.precision, "fp32_cross_backend")

    @classmethod
    @abc.abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(True, "") when the backend can run here, else (False, what is missing and how to provide it)."""

    @classmethod
    def artifact(cls, request):
        """What load() takes for a hardware.artifacts.ArtifactRequest (the zoo, model, bs, options,
        --model-dir): a module, an ONNX path, a compiled build. Raises ArtifactMissing naming the file
        that was expected and how to build it."""
        raise NotImplementedError(f"runner {cls.name} does not say where its artifact comes from")

    @abc.abstractmethod
    def load(self, artifact, batch_size: int) -> "Runner":
        """Prepare the artifact (a path, or a torch module for the torch runner). Returns self."""

    @abc.abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch exactly as given; return raw outputs."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits float32 (N, C) for a float32 (N, 3, H, W) batch; N may be below batch_size (partial tail).

        Static-batch runners get the partial tail padded to batch_size (pad_to_batch) and the padded
        rows dropped again here, so every backend handles the last batch the same way.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError(f"{self.name}: expected a 4-d NCHW batch, got shape {batch.shape}")
        n_real = batch.shape[0]
        if self.static_batch:
            if self.batch_size is None:
                raise RuntimeError(f"{self.name}: load() the artifact before infer()")
            batch, n_real = pad_to_batch(batch, self.batch_size)
        t0 = time.perf_counter()
        out = self._infer(batch)
        self.timing.host_s.append(time.perf_counter() - t0)
        out = np.asarray(out, dtype=np.float32)
        if out.ndim == 0 or out.shape[0] != batch.shape[0]:
            raise ValueError(f"{self.name}: {batch.shape[0]} input rows gave output of shape {out.shape}")
        return out.reshape(batch.shape[0], -1)[:n_real]

    def rebatched(self, batch_size: int) -> "Runner | None":
        """This loaded runner at another batch size, sharing what load() loaded (a session, a compiled model):
        for artifacts that take any batch size. None for a static-batch artifact, which is loaded per size."""
        if self.static_batch or self.batch_size is None:
            return None
        other = copy.copy(self)
        other.timing, other.batch_size, other._artifact_owner = Timing(), batch_size, self.artifact_owner
        return other

    @property
    def artifact_owner(self) -> "Runner":
        return getattr(self, "_artifact_owner", None) or self

    def shares_artifact_with(self, other: "Runner") -> bool:
        return self.artifact_owner is other.artifact_owner

    def close(self) -> None:
        """Release device resources; safe to call twice."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis (computed in float64, returned as float32)."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def reference_outputs(runner: Runner, reference_logits: np.ndarray) -> tuple[np.ndarray, str]:
    """A reference's logits in the runner's output kind, and a note saying what was done ("" for none)."""
    if runner.outputs == "probabilities":
        return softmax(reference_logits), "the runner outputs probabilities: compared with softmax(reference logits)"
    if runner.outputs != "logits":
        raise ValueError(f"{runner.name}: outputs must be 'logits' or 'probabilities', got {runner.outputs!r}")
    return reference_logits, ""


def infer_all(runner: Runner, batch: np.ndarray) -> np.ndarray:
    """Run any number of images through a loaded runner in chunks of runner.batch_size (last chunk partial)."""
    bs = runner.batch_size or len(batch)
    chunks = [runner.infer(batch[i:i + bs]) for i in range(0, len(batch), bs)]
    return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 0), np.float32)


def pad_to_batch(batch: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """Pad a partial batch with copies of its last image up to batch_size; return (padded, real count).

    Static-batch artifacts (Ascend .om, VACC builds) need exactly batch_size inputs; callers drop the
    padded rows from the outputs.
    """
    n = batch.shape[0]
    if n > batch_size:
        raise ValueError(f"batch of {n} is larger than the artifact's batch size {batch_size}")
    if n == batch_size:
        return batch, n
    pad = np.repeat(batch[-1:], batch_size - n, axis=0)
    return np.concatenate([batch, pad], axis=0), n


@dataclass(frozen=True)
class Marker:
    """A pytest marker a backend's hardware tests carry, and whether that hardware is here.

    ``detect()`` returns (True, what was found) or (False, what is missing and how to provide it); tests
    with the marker skip with that reason. ``npu``: an accelerator card, so its tests also carry ``npu``
    and ``-m "not npu"`` leaves them out. ``device``: the hardware's name in the report's device list.
    ``cards``: the card indices present, what ``pytest -m <marker> -n N`` spreads its workers over.
    """

    name: str
    description: str
    detect: Callable[[], tuple[bool, str]]
    npu: bool = False
    device: str = ""
    cards: Callable[[], list[int]] | None = None     # indices of the cards present (xdist --devices default)

    @property
    def device_name(self) -> str:
        return self.device or self.name


@dataclass(frozen=True)
class Backend:
    """One backend module's declaration: ``BACKEND = Backend(name, runners=(...), markers=(...))``.

    ``faults``: a callable returning zoogate.faults.Fault rows the backend adds to the fault matrix
    (called when the matrix is built, so a backend module never imports the gates at import time).
    """

    name: str
    runners: tuple[type[Runner], ...]
    markers: tuple[Marker, ...] = ()
    faults: Callable[[], Sequence] | None = None
