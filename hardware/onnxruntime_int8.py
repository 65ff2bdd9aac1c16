"""ONNX Runtime int8 on the CPU: a QDQ build of the fp32 export (zoogate.int8), calibrated on a calibration set.

The build follows vamc's int8-percentile recipe on ONNX Runtime: int8 weights per output channel, int8
activations per tensor with ranges from the calibration method, the classifier kept in float (zoogate.int8).
Options (``--runner onnxruntime-int8:key=value,...``):

- ``calib=DIR``: a calibration folder written by ``zoogate calib`` (jpg, bin, npy or npz, with its manifest);
  default: 32 generated images labelled by the fp32 reference, class-balanced (zoogate.int8.GENERATED_CALIBRATION);
- ``method=percentile|minmax|entropy`` (default percentile);
- ``keep_float=classifier|none`` (default classifier);
- ``intra_op_threads=N``.

The build is cached by the export's sha256, the calibration set's fingerprint, the method and settings; the
loaded runner's artifact_id is the build's own sha256, so results are never reused across builds.
"""

from __future__ import annotations

from hardware.base import Backend
from hardware.onnxruntime_runner import THREADS_OPTION, OnnxRuntimeRunner
from zoogate import int8


class OnnxRuntimeInt8Runner(int8.Int8Build, OnnxRuntimeRunner):
    name = "onnxruntime-int8"
    options = {**THREADS_OPTION, **int8.RUNNER_OPTIONS}

    def __init__(self, device_id: int = 0, intra_op_threads: int | None = None, **options) -> None:
        super().__init__(device_id, intra_op_threads)
        self.int8 = int8.Int8Options.of(options)


def _faults():
    from zoogate.faults import Fault
    from zoogate.faults_int8 import calibrated_on_one_class, calibrated_on_one_image, int8_accuracy

    return [Fault("int8-calibrated-on-one-class", "an int8 build calibrated on one class's images only (bisect names "
                  "where it leaves the fp32 graph)", "accuracy", "top1_vs_reference", calibrated_on_one_class,
                  int8_accuracy, bisected=True),
            Fault("int8-calibrated-on-one-image", "an int8 build calibrated on a single image", "accuracy",
                  "top1_vs_reference", calibrated_on_one_image, int8_accuracy)]


BACKEND = Backend("onnxruntime-int8", runners=(OnnxRuntimeInt8Runner,), faults=_faults)
