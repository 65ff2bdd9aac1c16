"""The ais_bench TXT reader: the first row of each file, parsed exactly like float(), vectorised.

ais_bench writes every value with ``%f`` followed by one space, then a newline; like the ModelZoo
postprocess, only the first row is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from zoogate.errors import ZoogateError

TXT_GROUP = 32                   # TXT files parsed per vectorised call (small arrays stay in cache: ~2x faster)
_MAX_DIGITS = 15                 # mantissas below 2**53: int -> float64 is exact, one division rounds once


def _fixed_point_parse(blob: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse whitespace-separated ``[+-]digits.dddddd`` tokens that all have the same number of decimals
    (what ``%f`` prints), token-parallel in numpy.

    Returns (values float64, token start offsets), bit-identical to ``float(token)``: the digits form an
    exact int64 mantissa m < 2**53 and the value is m / 10**d, one correctly rounded IEEE division, which
    is how float() rounds too. Returns None for anything else (exponents, nan, inf, mixed decimals, stray
    characters, > 15 digits); the caller then parses those lines token by token.
    """
    a = np.frombuffer(blob, dtype=np.uint8)
    # every byte must be whitespace, a digit, '.', '-' or '+' (counted with comparisons: table lookups are slower)
    is_ws = a <= ord(" ")
    n_ws = np.count_nonzero(is_ws)
    n_dots = np.count_nonzero(a == ord("."))
    n_signs = np.count_nonzero((a == ord("-")) | (a == ord("+")))
    n_digits = np.count_nonzero((a >= ord("0")) & (a <= ord("9")))
    if n_ws + n_dots + n_signs + n_digits != a.size:
        return None
    if np.count_nonzero((a == 32) | (a == 10) | (a == 13) | (a == 9)) != n_ws:
        return None                                  # other control characters: let the exact path complain
    # token ends = whitespace bytes that follow a non-whitespace byte; starts = just after the previous space
    wspos = np.flatnonzero(is_ws)
    if a.size and not is_ws[-1]:
        wspos = np.append(wspos, a.size)             # a token running to the end of the blob
    prev = np.concatenate(([-1], wspos[:-1]))
    token = wspos - prev > 1
    ends, starts = wspos[token], prev[token] + 1
    n_tok = starts.size
    if n_tok == 0:
        return np.zeros(0), starts
    first_dot = blob.find(b".", int(starts[0]), int(ends[0]))
    if first_dot < 0:
        return None
    decimals = int(ends[0]) - first_dot - 1
    length = ends - starts
    signed = (a[starts] == ord("-")) | (a[starts] == ord("+"))
    int_digits = length - decimals - 1 - signed
    if decimals < 1 or int_digits.min() < 1 or int_digits.max() + decimals > _MAX_DIGITS:
        return None
    # one dot per token, where the first token has it; signs only in front: the rest are digits
    if (a[ends - decimals - 1] != ord(".")).any() or n_dots != n_tok or n_signs != np.count_nonzero(signed):
        return None
    mantissa = np.zeros(n_tok, dtype=np.int64)
    for j in range(decimals):                                   # fraction digits, right to left
        mantissa += (a[ends - 1 - j] - 48).astype(np.int64) * 10 ** j
    for j in range(int(int_digits.max())):                      # integer digits, right to left
        valid = int_digits > j
        digit = a[np.where(valid, ends - decimals - 2 - j, 0)].astype(np.int64) - 48
        mantissa += np.where(valid, digit, 0) * 10 ** (j + decimals)
    values = mantissa.astype(np.float64) / 10.0 ** decimals
    neg = a[starts] == ord("-")
    values[neg] = -values[neg]
    return values, starts


def _parse_line_exact(line: bytes, path: Path) -> np.ndarray:
    values = []
    for i, tok in enumerate(line.split()):
        try:
            values.append(float(tok))
        except ValueError:
            raise ZoogateError(f"value {i + 1} of the first row, {tok[:40]!r}, is not a number", path) from None
    return np.asarray(values, dtype=np.float64)


def _first_line(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ZoogateError(f"cannot read result file: {exc.strerror}", path) from None
    return data.split(b"\n", 1)[0]


def read_txt_rows(paths: Sequence[Path]) -> list[np.ndarray]:
    """First row of each ais_bench TXT file as float64 (exactly float() of each printed value)."""
    rows: list[np.ndarray] = []
    for lo in range(0, len(paths), TXT_GROUP):
        group = paths[lo:lo + TXT_GROUP]
        lines = [_first_line(p) for p in group]
        blob = b"\n".join(lines)
        parsed = _fixed_point_parse(blob)
        if parsed is None:
            rows.extend(_parse_line_exact(line, p) for line, p in zip(lines, group))
            continue
        values, starts = parsed
        newlines = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == ord("\n"))
        rows.extend(np.split(values, np.searchsorted(starts, newlines)))     # tokens before each file's end
    return rows
