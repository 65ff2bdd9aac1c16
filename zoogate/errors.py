"""The one exception type for problems a user can cause (paths, files, formats)."""

from __future__ import annotations

import os


class ZoogateError(Exception):
    """A user-facing error: names the file (when there is one) and the problem.

    The CLI turns it into a one-line message and exit code 2; tests assert on ``str(err)``.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
