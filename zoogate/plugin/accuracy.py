"""pytest plugin: accuracy fixtures.

- ``accuracy_options`` (session): --imagenet, --limit, --resume, --results, --labels, --output-dtype,
  --baseline-row, --models.
- ``generated_sets`` (session): ``generated_sets.get(model)`` -> GeneratedSet: generated images written in the
  exact ImageNet layout in a temp folder, labelled by the model's PyTorch fp32 reference (zoo.model(name)),
  built once per model. CI's stand-in for ImageNet.
- ``imagenet_set`` (session): the --imagenet LabelledSet (class-balanced --limit subset), or None.
- ``live_eval`` (session): ``live_eval.run(model, runner, dataset, bs)`` -> EvalResult, memoised; ImageNet runs
  save partial results under <cache>/accuracy/ and continue them with --resume.
- ``offline_scoring`` (session): ``.get()`` -> (model, ScoredRun, [GateRecord]) for --results DIR --labels FILE
  --models M [--baseline-row ROW]; skips saying what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from zoogate import baselines, cache
from zoogate.accuracy import EvalResult, GeneratedSet, evaluate, label_generated_set, result_from_state, score_offline
from zoogate.datasets import LabelledSet, open_dataset
from zoogate.errors import ZoogateError

# images per generated set: with the 99 % floor every image must agree, so even 24 is a sharp test.
# inception_v4 costs ~2.6x iresnet50 per image on the CPU (labelling runs PyTorch eager).
GENERATED_IMAGES = {"inception_v4": 24}
GENERATED_IMAGES_DEFAULT = 32
GENERATED_BS = 8
REFERENCE_RUNNER = "torch"   # the fp32 reference the MLPerf-style gate compares with


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

    @classmethod
    def from_config(cls, config: pytest.Config) -> "AccuracyOptions":
        from zoogate.plugin.models import given_models

        given = given_models(config)
        models = tuple(given) if given else None
        return cls(imagenet=config.getoption("--imagenet"), limit=config.getoption("--limit"),
                   resume=bool(config.getoption("--resume")), results=config.getoption("--results"),
                   labels=config.getoption("--labels"), baseline_row=config.getoption("--baseline-row"),
                   models=models, output_dtype=config.getoption("--output-dtype"))


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
            from hardware.torch_runner import TorchRunner

            loaded = self.zoo.model(model)          # skips for ONNX-only models
            reference = TorchRunner().load(loaded, GENERATED_BS)
            self._sets[model] = label_generated_set(self.root / model, reference,
                                                    baselines.model(model).preprocess,
                                                    GENERATED_IMAGES.get(model, GENERATED_IMAGES_DEFAULT),
                                                    model=model, batch_size=GENERATED_BS)
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
    """EvalResults memoised per (model, runner, bs, image set); persisted runs can be resumed."""

    def __init__(self, options: AccuracyOptions) -> None:
        self.options = options
        self._results: dict[tuple, EvalResult] = {}

    @staticmethod
    def state_dir() -> Path:
        return cache.root() / "accuracy"

    def state_file(self, model: str, runner: str, bs: int, dataset: LabelledSet) -> Path:
        return self.state_dir() / f"{model}-{runner}-bs{bs}-{dataset.fingerprint()}.npz"

    def run(self, model: str, runner, dataset: LabelledSet, bs: int, *, persist: bool = True) -> EvalResult:
        key = (model, runner.name, bs, dataset.fingerprint())
        if key not in self._results:
            state = self.state_file(model, runner.name, bs, dataset) if persist else None
            self._results[key] = evaluate(runner, dataset, baselines.model(model).preprocess, bs, state_file=state,
                                          resume=self.options.resume, progress=persist, model=model)
        return self._results[key]

    def reference(self, model: str, dataset: LabelledSet) -> EvalResult | None:
        """The fp32 reference run on these images: from this session, else a complete saved run."""
        for (m, r, _, fp), result in self._results.items():
            if (m, r, fp) == (model, REFERENCE_RUNNER, dataset.fingerprint()):
                return result
        folder = self.state_dir()
        for path in sorted(folder.glob(f"{model}-{REFERENCE_RUNNER}-bs*-{dataset.fingerprint()}.npz")):
            found = result_from_state(path, dataset, model, REFERENCE_RUNNER)
            if found is not None:
                return found
        return None


@pytest.fixture(scope="session")
def live_eval(accuracy_options: AccuracyOptions) -> LiveEvaluations:
    return LiveEvaluations(accuracy_options)


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
