"""Resize and crop geometry shared by the pipelines: torchvision's rules and the deployed scripts' variants.

Kept apart from the pixel code so a test can state each rule on its own (round vs truncate is the
whole difference between the reference and the Ascend model-zoo script).
"""

from __future__ import annotations

CROP_ROUNDINGS = ("round", "truncate")


def short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(new_w, new_h) for Resize(short): the short side becomes `short`, the long side int(short*long/short_in).

    torchvision's rule (and the model-zoo scripts'): truncation, not rounding, of the long side.
    A square image is treated as width <= height, as torchvision does.
    """
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def crop_offset(size: int, crop: int, rounding: str = "round") -> int:
    """Left (or top) offset of a centre crop of `crop` pixels from `size` pixels.

    round: torchvision's CenterCrop, ``int(round((size - crop) / 2.0))`` (Python round: half to even),
    with zero padding when the image is smaller, i.e. a negative offset of ``-((crop - size) // 2)``.
    truncate: the Ascend InceptionV4 script, ``int((size - crop) / 2)``; PIL's crop pads with zeros
    outside the image, and int() truncates toward zero, so a smaller image lands at the same place.
    """
    if rounding not in CROP_ROUNDINGS:
        raise ValueError(f"rounding must be one of {CROP_ROUNDINGS}, got {rounding!r}")
    if rounding == "truncate":
        return int((size - crop) / 2)
    if crop > size:
        return -((crop - size) // 2)
    return int(round((size - crop) / 2.0))


def centre_crop_box(width: int, height: int, crop: int, rounding: str = "round") -> tuple[int, int, int, int]:
    """PIL crop box (left, top, right, bottom) of a square centre crop."""
    left = crop_offset(width, crop, rounding)
    top = crop_offset(height, crop, rounding)
    return left, top, left + crop, top + crop
