"""pytest plugin: model selection (--models), the session-wide `zoo` fixture, `model_name` parametrization."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from zoogate import baselines, cache, synthetic
from zoogate.errors import ZoogateError
from zoogate.plugin._params import explicitly_parametrized

if TYPE_CHECKING:
    from zoogate.weights import LoadedModel


def given_models(config: pytest.Config) -> list[str] | None:
    """The models --models names, in order (None without --models, or with --models all).

    An empty selection (``--models ","``) or an unknown name is a usage error: a run that selects no
    model would gate nothing and could still exit 0."""
    spec = config.getoption("--models")
    if spec is None or spec.strip() == "all":
        return None
    known = sorted(baselines.load_all())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError(f"--models {spec!r} selects no model; name one or more of: {', '.join(known)} "
                                "(or 'all')")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise pytest.UsageError(f"--models: unknown model(s) {unknown}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def selected_models(config: pytest.Config) -> list[str]:
    """--models when given, else every registry model."""
    return given_models(config) or sorted(baselines.load_all())


def _onnx_specs(config: pytest.Config) -> dict[str, Path]:
    out = {}
    for spec in config.getoption("--onnx"):
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise pytest.UsageError(f"--onnx: expected NAME=PATH, got {spec!r}")
        if name not in baselines.load_all():
            raise pytest.UsageError(f"--onnx: unknown model {name!r}")
        if not Path(path).is_file():
            raise pytest.UsageError(f"--onnx {name}: file not found: {path}")
        out[name] = Path(path)
    return out


class Zoo:
    """Session-wide access to models, their exports and generated input batches (all memoised)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.weight_specs: list[str] = list(config.getoption("--weights"))
        self.onnx_files = _onnx_specs(config)
        self._models: dict[str, LoadedModel] = {}
        self._exports: dict[tuple, Path] = {}
        self._batches: dict[tuple, np.ndarray] = {}

    def has_torch(self, name: str) -> bool:
        return not baselines.model(name).user_supplied

    def model(self, name: str) -> LoadedModel:
        """The torch module (real weights with --weights, else calibrated); skips for ONNX-only rows."""
        if not self.has_torch(name):
            pytest.skip(f"{name} has no PyTorch implementation here (PaddleClas/MindSpore row): "
                        f"gates that need one skip; pass --onnx {name}=PATH for the ONNX-based gates")
        if name not in self._models:
            try:
                from zoogate.weights import load_model     # torch: imported when a model is first needed

                self._models[name] = load_model(name, self.weight_specs)
            except ZoogateError as exc:
                pytest.fail(f"cannot load weights for {name}: {exc}", pytrace=False)
        return self._models[name]

    def onnx(self, name: str, exporter: str = "torchscript", **kwargs) -> Path:
        """A user's --onnx file for the model, else our export of zoo.model(name) (cached on disk)."""
        from zoogate.export import export_onnx

        if name in self.onnx_files:
            return self.onnx_files[name]
        if not self.has_torch(name):
            pytest.skip(f"{name} is a user-supplied ONNX model: pass --onnx {name}=PATH")
        key = (name, exporter, tuple(sorted(kwargs.items())))
        if key not in self._exports:
            self._exports[key] = export_onnx(self.model(name), exporter=exporter, **kwargs)
        return self._exports[key]

    def batch(self, name: str, n: int, seed: int = 0) -> np.ndarray:
        """n generated images through the model's reference preprocessing: float32 NCHW (read-only)."""
        from zoogate.preprocess.reference import preprocess_batch

        key = (name, n, seed)
        if key not in self._batches:
            arr = preprocess_batch(synthetic.images(n, seed=seed), baselines.model(name).preprocess)
            arr.setflags(write=False)
            self._batches[key] = arr
        return self._batches[key]


def pytest_configure(config: pytest.Config) -> None:
    given_models(config)          # a bad --models is a usage error at start-up
    try:
        cache.set_root(config.getoption("--cache-dir"))
        if os.environ.get("ZOOGATE_CACHE"):
            cache.root()              # a bad $ZOOGATE_CACHE fails now, not in the middle of the run
    except ZoogateError as exc:
        raise pytest.UsageError(str(exc)) from None


# test argument -> which selected models it is parametrized over
MODEL_ARGUMENTS = {
    "model_name": lambda mb: True,                       # every selected registry model
    "torch_model_name": lambda mb: not mb.user_supplied,  # models we can build in PyTorch
    "onnx_model_name": lambda mb: mb.user_supplied,       # PaddleClas/MindSpore rows: --onnx NAME=PATH
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for arg, keep in MODEL_ARGUMENTS.items():
        if arg in metafunc.fixturenames and not explicitly_parametrized(metafunc, arg):
            names = [n for n in selected_models(metafunc.config) if keep(baselines.model(n))]
            metafunc.parametrize(arg, names, ids=names)


@pytest.fixture(scope="session")
def zoo(request: pytest.FixtureRequest) -> Zoo:
    return Zoo(request.config)
