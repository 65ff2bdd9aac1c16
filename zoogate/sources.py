"""The public documents the baselines cite (baselines/documents.toml), and finding copies of them.

A baseline's ``source = "<document>: <table>"``; ``<document>`` must be a key of documents.toml, which
gives its URL and the sha256 of the copies its numbers were read from. ``locate(document, folder)``
finds copies in a user's folder of documents (``pytest --sources DIR``): any file with one of those
digests, whatever its name, or the file at ``DIR/<repository name>/<path>``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from zoogate.errors import ZoogateError

DOCUMENTS_FILE = "documents.toml"
_MAX_DOCUMENT_BYTES = 8 << 20            # documents are READMEs and scripts: larger files are not read


@dataclass(frozen=True)
class Document:
    key: str                               # "VastModelZOO cv/classification/inception_v4/README.md"
    url: str
    digests: dict[str, str]                # sha256 -> which copy it is

    @property
    def relative_path(self) -> Path:
        """<repository folder>/<path in it>: where a clone holds it. Keys read "[owner] <repository> <path>"
        (paths have no spaces): VastModelZOO/cv/..., ModelZoo-PyTorch/ACL_PyTorch/..., models/official/..."""
        words = self.key.split()
        return Path(words[-2]) / words[-1] if len(words) >= 2 else Path(words[-1])


def document_of(source: str) -> str:
    return source.split(": ", 1)[0].strip()


@functools.lru_cache(maxsize=4)
def load_documents(directory: str) -> dict[str, Document]:
    path = Path(directory) / DOCUMENTS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoogateError("missing: it lists the documents baseline sources cite", path) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ZoogateError(f"cannot read it: {exc}", path) from None
    docs = {}
    for key, raw in data.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
            raise ZoogateError(f"{key!r}: expected a table with a url", path)
        versions = raw.get("versions", [])
        if not isinstance(versions, list) or not all(isinstance(v, dict) and isinstance(v.get("sha256"), str)
                                                      and len(v["sha256"]) == 64 for v in versions):
            raise ZoogateError(f"{key!r}.versions: expected a list of {{sha256 = <64 hex digits>, read = ...}}",
                               path)
        docs[key] = Document(key, raw["url"], {v["sha256"]: str(v.get("read", "")) for v in versions})
    return docs


def check_cited(sources: dict[str, str], directory: str | os.PathLike) -> None:
    """Every cited document is declared; ``sources`` maps where it is cited ("file: key") to the source."""
    docs = load_documents(os.fspath(directory))
    for where, source in sources.items():
        if document_of(source) not in docs:
            raise ZoogateError(f"source {source!r} cites {document_of(source)!r}, which "
                               f"{DOCUMENTS_FILE} does not list (add it with its url and digest)", where)


def _digest(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_DOCUMENT_BYTES:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _digests_in(folder: str) -> dict[str, tuple[Path, ...]]:
    found: dict[str, list[Path]] = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            d = _digest(p)
            if d:
                found.setdefault(d, []).append(p)
    return {d: tuple(ps) for d, ps in found.items()}


def locate(document: Document, folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """Copies of the document in ``folder``: (path, which version) by digest, then by path."""
    by_digest = _digests_in(os.fspath(folder))
    copies = [(p, document.digests[d]) for d in document.digests for p in by_digest.get(d, ())]
    at_path = Path(folder) / document.relative_path
    if at_path.is_file() and all(p != at_path for p, _ in copies):
        copies.append((at_path, "found by path (a version not recorded)"))
    return copies
