"""pytest plugin: runner parametrization with hardware markers, and loaded runners for (model, runner, bs).

Parametrizing (so ``-m <marker>`` and ``-m "not npu"`` select exactly the runner tests of that hardware;
the runners and their markers come from hardware.registry):

- a test argument ``runner_case`` is parametrized over (model, runner, bs) as ``RunnerCase`` values
  with ids like ``inception_v4-onnxruntime-bs4``; each param carries its runner's marker
  (a card's marker also ``npu``). Configure per module/test with
  ``@pytest.mark.runner_cases(models=[...], runners=[...], bs=[...], min_bs=1)``; command-line
  ``--models`` (when given), ``--runner`` (restricts; ``NAME:key=value,...`` passes runner options) and
  ``--bs`` override the marker's models/bs.
- a test argument ``runner_name`` is parametrized over runner names alone (``runner_params()``).
- for hand-made parametrization: ``runner_params(config)``, ``runner_case_params(config, models, ...)``.

Fixtures: ``loaded_runner`` (the Runner for the test's runner_case, loaded and cached for the
session), ``runner_loader`` (session: ``runner_loader.load(model, runner, bs)`` for explicit use),
``eager_logits`` (session: ``eager_logits(model, batch)`` -> PyTorch eager fp32 logits, memoised).
A runner that is not available here, or an artifact missing from --model-dir, skips with the reason
(naming the file that was expected). A runner whose ``vendor_module`` is a test double fails instead.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pytest

from hardware import registry
from hardware.artifacts import ArtifactMissing, ArtifactRequest
from zoogate import baselines
from zoogate.errors import ZoogateError
from zoogate.plugin._params import explicitly_parametrized
from zoogate.plugin._devices import placement
from zoogate.plugin._state import batch_sizes as given_batch_sizes

MARK = "runner_cases"
DEFAULT_BS = (1, 4)              # runner tests on the CPU when --bs is not given
DEFAULT_MODELS = ("inception_v4",)
# loaded artifacts kept per session (a batch-size view of one shares it and does not count): every CPU runner
# of the two models the suite runs by default, so tests in any order (--random-order) load each build once;
# an inception_v4 session holds ~170 MB
_LOADED_MAX = 16


@dataclass(frozen=True)
class RunnerCase:
    """One (model, runner, batch size) a runner test runs; ``options`` are runner options from --runner."""

    model: str
    runner: str
    bs: int
    options: tuple = field(default=())

    @property
    def id(self) -> str:
        return f"{self.model}-{self.runner}-bs{self.bs}"

    @property
    def marker(self) -> str | None:
        return registry.marker(self.runner)

    def __str__(self) -> str:
        return self.id


def _marks(runner: str) -> list:
    marker = registry.marker(runner)
    if marker is None:
        return []
    marks = [getattr(pytest.mark, marker)]
    if registry.markers()[marker].npu:
        marks.append(getattr(pytest.mark, registry.NPU))
    return marks


def runner_specs(config: pytest.Config) -> list[registry.RunnerSpec]:
    """--runner specs in order (default: every registry runner, no options)."""
    given = config.getoption("--runner") or []
    try:
        specs = [registry.parse_spec(s) for s in given]
    except ZoogateError as exc:
        raise pytest.UsageError(f"--runner: {exc}") from None
    return specs or [registry.RunnerSpec(n) for n in registry.names()]


def selected_runners(config: pytest.Config, runners=None) -> list[registry.RunnerSpec]:
    """--runner specs restricted to ``runners`` (names) when given."""
    specs = runner_specs(config)
    if runners is not None:
        unknown = [r for r in runners if r not in registry.names()]
        if unknown:
            raise pytest.UsageError(f"runner_cases: unknown runner(s) {unknown}")
        specs = [s for s in specs if s.name in runners]
    return specs


def batch_sizes(config: pytest.Config, default=DEFAULT_BS) -> list[int]:
    """--bs when given, else ``default``."""
    return list(given_batch_sizes(config) or default)


def runner_params(config: pytest.Config, runners=None) -> list:
    """One pytest.param per runner name, marked with its hardware marker, id = the name."""
    return [pytest.param(s.name, marks=_marks(s.name), id=s.name) for s in selected_runners(config, runners)]


def _models(config: pytest.Config, models) -> list[str]:
    from zoogate.plugin.models import selected_models

    if config.getoption("--models"):           # the command line wins over a test's default models
        return selected_models(config)
    names = list(models or DEFAULT_MODELS)
    known = baselines.load_all()
    unknown = [m for m in names if m not in known]
    if unknown:
        raise pytest.UsageError(f"runner_cases: unknown model(s) {unknown}")
    return names


def runner_case_params(config: pytest.Config, models=None, runners=None, bs=None, min_bs: int = 1) -> list:
    """pytest.params of RunnerCase over models x runners x batch sizes (ids ``model-runner-bsN``).

    Batch sizes below ``min_bs`` are left out; when that leaves none, one param per (model, runner)
    at the smallest size is kept, marked skip with the reason.
    """
    sizes = batch_sizes(config, bs or DEFAULT_BS)
    usable = [b for b in sizes if b >= min_bs]
    skip = None
    if not usable:
        usable = [min(sizes)]
        skip = pytest.mark.skip(reason=f"needs a batch size >= {min_bs}; --bs gave {sizes}: "
                                       f"run with --bs {max(min_bs, 4)}")
    params = []
    for model in _models(config, models):
        for spec in selected_runners(config, runners):
            for b in usable:
                case = RunnerCase(model, spec.name, b, tuple(sorted(spec.options.items())))
                marks = _marks(spec.name) + ([skip] if skip else [])
                params.append(pytest.param(case, marks=marks, id=case.id))
    return params


def _mark_kwargs(definition) -> dict:
    """runner_cases marker arguments, the closest marker winning per key."""
    merged: dict = {}
    for mark in definition.iter_markers(MARK):        # closest first
        for key, value in mark.kwargs.items():
            merged.setdefault(key, value)
    return merged


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(models=None, runners=None, bs=None, min_bs=1): what the "
                                       "runner_case argument is parametrized over (zoogate.plugin.runners)")
    runner_specs(config)          # a bad --runner is a usage error at start-up, not a collection error


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "runner_case" in metafunc.fixturenames and not explicitly_parametrized(metafunc, "runner_case"):
        kw = _mark_kwargs(metafunc.definition)
        unknown = set(kw) - {"models", "runners", "bs", "min_bs"}
        if unknown:
            raise pytest.UsageError(f"{MARK}: unknown argument(s) {sorted(unknown)}")
        metafunc.parametrize("runner_case", runner_case_params(metafunc.config, **kw))
    if "runner_name" in metafunc.fixturenames and not explicitly_parametrized(metafunc, "runner_name"):
        metafunc.parametrize("runner_name", runner_params(metafunc.config, _mark_kwargs(metafunc.definition)
                                                           .get("runners")))


class RunnerLoader:
    """Loads runners for (model, runner, bs) from the zoo or --model-dir; keeps the last few loaded."""

    def __init__(self, config: pytest.Config, zoo) -> None:
        self.config, self.zoo = config, zoo
        self.device_id = placement(config).device          # --devices under xdist, else --device-id
        self.model_dir = config.getoption("--model-dir")
        self._cli_options = {s.name: s.options for s in runner_specs(config)}
        self._loaded: OrderedDict = OrderedDict()

    def _find(self, model: str, runner: str, bs: int, options: dict) -> tuple[object, ArtifactRequest]:
        request = ArtifactRequest(self.zoo, model, bs, dict(options), self.model_dir)
        try:
            return registry.get(runner).artifact(request), request
        except ArtifactMissing as exc:
            pytest.skip(str(exc))
        except ZoogateError as exc:          # a user's file the artifact is built from (--runner ...:calib=DIR)
            pytest.fail(f"runner {runner}: {exc}", pytrace=False)

    def artifact(self, model: str, runner: str, bs: int, options: dict):
        """What the runner's load() takes; skips naming the expected file when a compiled one is missing."""
        return self._find(model, runner, bs, options)[0]

    def load(self, model, runner: str | None = None, bs: int | None = None, **options):
        """A loaded Runner; ``model`` may be a RunnerCase. Skips when the backend is not available here.

        A runner whose artifact takes any batch size (not static_batch) is loaded once per (model, runner,
        options) and handed out per batch size as ``Runner.rebatched`` copies sharing the loaded artifact."""
        if isinstance(model, RunnerCase):
            case = model
            model, runner, bs = case.model, case.runner, case.bs
            options = {**dict(case.options), **options}
        options = {**self._cli_options.get(runner, {}), **options}
        build = (model, runner, tuple(sorted(options.items())))
        key = (*build, bs)
        if key in self._loaded:
            owner = self._loaded[key].artifact_owner
            for k in [k for k, r in self._loaded.items() if r.artifact_owner is owner]:
                self._loaded.move_to_end(k)          # the artifact was used: all its views are recent
            return self._loaded[key]
        cls = registry.get(runner)
        ok, why = cls.available()
        if not ok:
            pytest.skip(f"runner {runner} not available: {why}")
        shared = next((r for k, r in reversed(self._loaded.items()) if k[:3] == build), None)
        instance = shared.rebatched(bs) if shared is not None else None
        if instance is None:
            instance = self._load_new(model, runner, bs, options)
        self._loaded[key] = instance
        while len({id(r.artifact_owner) for r in self._loaded.values()}) > _LOADED_MAX:
            oldest = next(iter(self._loaded.values())).artifact_owner
            for k in [k for k, r in self._loaded.items() if r.artifact_owner is oldest]:
                del self._loaded[k]
            oldest.close()
        return instance

    def _load_new(self, model: str, runner: str, bs: int, options: dict):
        cls = registry.get(runner)
        artifact, request = self._find(model, runner, bs, options)
        instance = registry.create(runner, device_id=self.device_id, **options).load(artifact, bs)
        if request.weights_identity and not instance.weights_identity:
            instance.weights_identity = request.weights_identity     # our export of these weights
        vendor = sys.modules.get(cls.vendor_module) if cls.vendor_module else None
        if vendor is not None and getattr(vendor, "__zoogate_double__", False):
            instance.close()
            pytest.fail(f"runner {runner} imported the test DOUBLE of {vendor.__name__}, not the vendor SDK: "
                        f"hardware tests never run on doubles", pytrace=False)
        return instance

    def close(self) -> None:
        while self._loaded:
            self._loaded.popitem()[1].close()


@pytest.fixture(scope="session")
def runner_loader(request: pytest.FixtureRequest, zoo):
    loader = RunnerLoader(request.config, zoo)
    yield loader
    loader.close()


@pytest.fixture
def loaded_runner(runner_case: RunnerCase, runner_loader: RunnerLoader):
    """The Runner for this test's runner_case (session-cached); its timing is cleared for the test."""
    runner = runner_loader.load(runner_case)
    runner.timing.clear()
    return runner


@pytest.fixture(scope="session")
def eager_logits(zoo):
    """eager_logits(model, batch) -> float32 (N, C) logits of the model's PyTorch module on the CPU (memoised)."""
    cache: dict = {}

    def run(model: str, batch: np.ndarray) -> np.ndarray:
        import torch

        key = (model, batch.shape, hashlib.sha1(np.ascontiguousarray(batch).tobytes()).hexdigest())
        if key not in cache:
            module = zoo.model(model).module
            with torch.inference_mode():
                out = module(torch.from_numpy(np.array(batch, dtype=np.float32)))
            out = out[0] if isinstance(out, (tuple, list)) else out
            cache[key] = out.float().numpy()
        return cache[key]

    return run
