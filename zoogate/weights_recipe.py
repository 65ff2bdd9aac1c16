"""The recipe of the calibrated weights (zoogate.weights): their default seed and calibration settings.

Kept apart from zoogate.weights, which imports torch, so that a report can name the seeds of a run that ran
no torch code without importing it."""

DEFAULT_SEED = 0             # the seed of calibrated weights unless a caller gives one
CALIBRATION = {"batches": 4, "batch_size": 8, "image_seed": 10_000, "target_logit_std": 3.0,
               "head_directions": 8, "head_whiten": 0.0, "version": 3}
