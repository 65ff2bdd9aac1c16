"""Reading what a user points at: folder entries and text files, every failure a ZoogateError naming the path."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

from zoogate.errors import ZoogateError


def split_entries(entries) -> tuple[list[str], list[str]]:
    """(file names, folder names) of ``os.scandir`` entries, hidden ones left out, in the order given."""
    files, dirs = [], []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            is_file, is_dir = e.is_file(), e.is_dir()
        except OSError as exc:          # a symbolic link loop (ELOOP), or an entry we may not stat
            raise ZoogateError(f"cannot tell what this entry is: {exc.strerror} (a symbolic link loop?)",
                               e.path) from None
        if is_file:
            files.append(e.name)
        elif is_dir:
            dirs.append(e.name)
    return files, dirs


def read_text(path: str | os.PathLike, what: str, *, encoding: str = "utf-8") -> str:
    """The text of a file the user named as ``what`` ("datalist", "build config", ...)."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise ZoogateError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise ZoogateError(f"is a directory, expected a {what}", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoogateError(f"cannot read the {what}: {exc}", path) from None


def write_atomic(path: str | os.PathLike, write: Callable[[IO], None], *, text: bool = False,
                 file_mode: int | None = None) -> Path:
    """Write ``path`` through ``write(fh)`` into a temp file beside it, then os.replace: a reader never sees
    half a file, and an interruption leaves no temp file. ``file_mode``: chmod before publishing (mkstemp
    makes 0600). Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")) as fh:
            write(fh)
        if file_mode is not None:
            os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path
