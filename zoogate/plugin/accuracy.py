"""pytest plugin: accuracy fixtures.

- ``accuracy_options`` (session): --imagenet, --limit, --resume, --results, --labels, --output-dtype,
  --baseline-row, --models.
- ``generated_sets`` (session): ``generated_sets.get(model)`` -> GeneratedSet: generated images written in the
  exact ImageNet layout in a temp folder, labelled by the model's PyTorch fp32 reference (zoo.model(name)),
  built once per model. CI's stand-in for ImageNet.
- ``imagenet_set`` (session): the --imagenet LabelledSet (class-balanced --limit subset), or None.
- ``live_eval`` (session): ``live_eval.run(model, runner, dataset, bs)`` -> EvalResult, memoised per build
  identity; ImageNet runs save partial results under <cache>/accuracy/ (file name = the build identity's
  hash) and continue them with --resume, refusing (BuildMismatch) another build's interrupted run.
  ``live_eval.reference(model, dataset)``: this build's PyTorch fp32 reference run (session, saved, or computed).
- ``offline_scoring`` (session): ``.get()`` -> (model, ScoredRun, [GateRecord]) for --results DIR --labels FILE
  --models M [--baseline-row ROW]; skips saying what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from zoogate import baselines, cache
from zoogate.accuracy import EvalResult, evaluate, reference_run, refuse_other_builds, score_offline
from zoogate.generated_set import GENERATED_IMAGES, GENERATED_IMAGES_DEFAULT, GeneratedSet, generated_set_for
from zoogate.crop_cache import DEFAULT_MAX_GB
from zoogate.input_pipeline import InputOptions
from zoogate.partial_results import run_identity, state_file_for
from zoogate.datasets import LabelledSet, open_dataset
from zoogate.errors import ZoogateError
from zoogate.identity import BuildMismatch

GENERATED_BS = 8
REFERENCE_RUNNER = "torch"   # the fp32 reference the MLPerf-style gate compares with
REFERENCE_BS = 8


@dataclass(frozen=True)
class AccuracyOptions:
    imagenet: str | None
    limit: int | None
    resume: bool
    results: str | None
    labels: str | None
    baseline_row: str | None
    models: tuple[str, ...] | None
    output_dtype: str | None = None
    inputs: InputOptions = InputOptions()

    @classmethod
    def from_config(cls, config: pytest.Config) -> "AccuracyOptions":
        from zoogate.plugin.models import given_models

        given = given_models(config)
        models = tuple(given) if given else None
        return cls(imagenet=config.getoption("--imagenet"), limit=config.getoption("--limit"),
                   resume=bool(config.getoption("--resume")), results=config.getoption("--results"),
                   labels=config.getoption("--labels"), baseline_row=config.getoption("--baseline-row"),
                   models=models, output_dtype=config.getoption("--output-dtype"), inputs=input_options(config))


def input_options(config: pytest.Config) -> InputOptions:
    workers, max_gb = config.getoption("--workers"), config.getoption("--crop-cache-max-gb")
    if workers is not None and workers < 0:
        raise pytest.UsageError(f"--workers: expected 0 or more worker processes; got {workers}")
    if max_gb is not None and not max_gb > 0:
        raise pytest.UsageError(f"--crop-cache-max-gb: expected a size above 0 GB; got {max_gb:g}")
    return InputOptions(workers=workers, crop_cache=not config.getoption("--no-crop-cache"),
                        crop_cache_max_gb=DEFAULT_MAX_GB if max_gb is None else max_gb)


@pytest.fixture(scope="session")
def accuracy_options(request: pytest.FixtureRequest) -> AccuracyOptions:
    return AccuracyOptions.from_config(request.config)


class GeneratedSets:
    """One generated labelled set per model, labelled by its PyTorch fp32 module on the CPU."""

    def __init__(self, zoo, root: Path) -> None:
        self.zoo, self.root = zoo, root
        self._sets: dict[str, GeneratedSet] = {}

    def get(self, model: str) -> GeneratedSet:
        if model not in self._sets:
            loaded = self.zoo.model(model)          # skips for ONNX-only models
            self._sets[model] = generated_set_for(self.root / model, loaded,
                                                  GENERATED_IMAGES.get(model, GENERATED_IMAGES_DEFAULT),
                                                  batch_size=GENERATED_BS)
        return self._sets[model]


@pytest.fixture(scope="session")
def generated_sets(zoo, tmp_path_factory: pytest.TempPathFactory) -> GeneratedSets:
    return GeneratedSets(zoo, tmp_path_factory.mktemp("generated-imagenet"))


@pytest.fixture(scope="session")
def imagenet_set(accuracy_options: AccuracyOptions) -> LabelledSet | None:
    if not accuracy_options.imagenet:
        return None
    try:
        return open_dataset(accuracy_options.imagenet, limit=accuracy_options.limit)
    except ZoogateError as exc:
        problem = str(exc)
    pytest.fail(f"--imagenet: {problem}", pytrace=False)


class LiveEvaluations:
    """EvalResults memoised per build identity and batch size; persisted runs can be resumed by the same build.

    ``reference_runner(model)`` returns the loaded fp32 reference runner of this session's build (the zoo's
    weights through the torch runner); without it no reference can be named, so none is used.
    """

    def __init__(self, options: AccuracyOptions, reference_runner: Callable | None = None,
                 state_dir: Path | None = None) -> None:
        self.options = options
        self.reference_runner = reference_runner
        self._state_dir = state_dir
        self._results: dict[tuple, EvalResult] = {}

    def state_dir(self) -> Path:
        return self._state_dir or cache.root() / "accuracy"

    @staticmethod
    def _key(identity, runner, bs: int) -> tuple:
        # a runner that cannot name its artifact shares results with nothing but itself
        return (identity.digest(), bs) if identity.reusable else (runner, identity.digest(), bs)

    def run(self, model: str, runner, dataset: LabelledSet, bs: int, *, persist: bool = True) -> EvalResult:
        spec = baselines.model(model).preprocess
        identity = run_identity(runner, model, spec, dataset)
        key = self._key(identity, runner, bs)
        if key not in self._results:
            state = state_file_for(self.state_dir(), identity, bs) if persist else None
            if state is not None and self.options.resume and not state.is_file():
                refuse_other_builds(self.state_dir(), identity, bs)
            try:
                self._results[key] = evaluate(runner, dataset, spec, bs, state_file=state,
                                              resume=self.options.resume, progress=persist, model=model,
                                              identity=identity, inputs=self.options.inputs)
            except BuildMismatch:
                raise                        # another build's partial results: the build_identity gate says so
            except ZoogateError as exc:      # e.g. a corrupt partial-results file: one line, no traceback
                problem = str(exc)
            else:
                return self._results[key]
            pytest.fail(f"live evaluation of {model} on {getattr(runner, 'name', runner)} bs{bs}: {problem}",
                        pytrace=False)
        return self._results[key]

    def reference(self, model: str, dataset: LabelledSet) -> EvalResult | None:
        """This build's fp32 reference run on these images: from this session, a complete saved run of the
        same build, else computed now (and saved). Never a reference of another build; None without a
        reference runner."""
        if self.reference_runner is None:
            return None
        runner = self.reference_runner(model)
        try:
            result = reference_run(self.state_dir(), runner, dataset, baselines.model(model).preprocess,
                                   model=model, resume=self.options.resume, computed=list(self._results.values()),
                                   inputs=self.options.inputs)
        except BuildMismatch:
            raise
        except ZoogateError as exc:          # a hand-edited saved reference run: one line, no traceback
            problem = str(exc)
        else:
            self._results.setdefault(self._key(result.identity, runner, result.batch_size), result)
            return result
        pytest.fail(f"fp32 reference run of {model}: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def live_eval(accuracy_options: AccuracyOptions, zoo) -> LiveEvaluations:
    from hardware.torch_runner import TorchRunner

    return LiveEvaluations(accuracy_options,
                           reference_runner=lambda model: TorchRunner().load(zoo.model(model), REFERENCE_BS))


class OfflineScoring:
    """--results DIR --labels FILE --models M [--baseline-row ROW], scored once per session."""

    def __init__(self, options: AccuracyOptions) -> None:
        self.options = options
        self._scored = None

    def get(self):
        """(model, ScoredRun, [GateRecord]); skips saying what is missing."""
        o = self.options
        if not o.results and not o.labels:
            pytest.skip("no device result folder: pass --results DIR --labels FILE --models M [--baseline-row ROW]")
        if not o.results or not o.labels:
            pytest.skip(f"offline scoring needs both --results DIR and --labels FILE (missing "
                        f"{'--labels' if o.results else '--results'})")
        if not o.models or len(o.models) != 1:
            pytest.skip("offline scoring needs the one model the results come from: --models M")
        if self._scored is None:
            model = o.models[0]
            try:
                self._scored = (model, *score_offline(model, o.results, o.labels, row=o.baseline_row,
                                                      output_dtype=o.output_dtype))
            except ZoogateError as exc:
                problem = str(exc)
            else:
                return self._scored
            pytest.fail(f"cannot score --results: {problem}", pytrace=False)
        return self._scored


@pytest.fixture(scope="session")
def offline_scoring(accuracy_options: AccuracyOptions) -> OfflineScoring:
    return OfflineScoring(accuracy_options)
