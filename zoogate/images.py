"""Opening user images: every failure becomes a ZoogateError naming the file and the problem."""

from __future__ import annotations

import io
import os
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from zoogate.errors import ZoogateError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes, with the errors open_image gives."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ZoogateError("file not found", path) from None
    except IsADirectoryError:
        raise ZoogateError("is a directory, not an image", path) from None
    except PermissionError:
        raise ZoogateError("permission denied", path) from None
    except OSError as exc:
        raise ZoogateError(f"cannot read the file ({exc.strerror or exc})", path) from None


def open_image(path: str | os.PathLike, *, exif_transpose: bool = False, data: bytes | None = None) -> Image.Image:
    """Read and fully decode an image (PIL is lazy: truncation shows only on load). ``data``: the file's bytes
    when already read; errors name ``path`` either way."""
    if data is None:
        data = read_bytes(path)
    try:
        if not data:
            raise ZoogateError("empty file (0 bytes), not an image", path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except ZoogateError:
        raise
    except UnidentifiedImageError:
        raise ZoogateError("not an image PIL can identify (corrupt or another file type)", path) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ZoogateError(f"cannot decode image ({exc})", path) from None
    return ImageOps.exif_transpose(img) if exif_transpose else img


def open_rgb(path: str | os.PathLike, *, exif_transpose: bool = False, data: bytes | None = None) -> Image.Image:
    """The reference input: ``PIL.Image.open(f).convert('RGB')`` with clear errors."""
    img = open_image(path, exif_transpose=exif_transpose, data=data)
    try:
        return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ZoogateError(f"cannot convert mode {img.mode} to RGB ({exc})", path) from None
