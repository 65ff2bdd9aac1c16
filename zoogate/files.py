"""Reading what a user points at: folder entries and text files, every failure a ZoogateError naming the path."""

from __future__ import annotations

import os
from pathlib import Path

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
