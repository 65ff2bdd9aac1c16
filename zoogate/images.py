"""Opening user images: every failure becomes a ZoogateError naming the file and the problem."""

from __future__ import annotations

import os
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from zoogate.errors import ZoogateError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


def open_image(path: str | os.PathLike, *, exif_transpose: bool = False) -> Image.Image:
    """Open and fully decode an image (PIL is lazy: truncation shows only on load)."""
    try:
        if os.path.getsize(path) == 0:
            raise ZoogateError("empty file (0 bytes), not an image", path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except ZoogateError:
        raise
    except FileNotFoundError:
        raise ZoogateError("file not found", path) from None
    except IsADirectoryError:
        raise ZoogateError("is a directory, not an image", path) from None
    except PermissionError:
        raise ZoogateError("permission denied", path) from None
    except UnidentifiedImageError:
        raise ZoogateError("not an image PIL can identify (corrupt or another file type)", path) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ZoogateError(f"cannot decode image ({exc})", path) from None
    return ImageOps.exif_transpose(img) if exif_transpose else img


def open_rgb(path: str | os.PathLike, *, exif_transpose: bool = False) -> Image.Image:
    """The reference input: ``PIL.Image.open(f).convert('RGB')`` with clear errors."""
    img = open_image(path, exif_transpose=exif_transpose)
    try:
        return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ZoogateError(f"cannot convert mode {img.mode} to RGB ({exc})", path) from None
