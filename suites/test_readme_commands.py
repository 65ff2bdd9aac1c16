"""README.md's commands, run as a user runs them: from the checkout, in a subprocess, with every path
option pointing at a folder or file that exists outside the checkout. Lab commands with path options run
in both spellings, ``--opt VALUE`` and then ``--opt=VALUE`` (the second run meets the files the first left);
the other commands alternate between the two spellings, so both are covered without running each twice.

The commands are read from README.md, so the README and this test cannot drift apart. The lab commands
(``-m ascend``, ``-m vacc``, ``-m gpu``) run in full: without the hardware they exit 0 with every test
skipped and a reason. The other pytest commands need data this machine does not have, so they are
collected (``--collect-only``): exit 0, no usage error. Every run must keep the checkout as rootdir and
leave the user's folders as they were (no ``.pytest_cache`` written into a model folder).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hardware import registry
from zoogate import cli
from zoogate.plugin import core

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LAB_MARKERS = (*registry.markers(), registry.NPU)    # hardware markers: these commands run in full
_CODE_LINE = re.compile(r"^ {4}(?P<cmd>(?:pytest|zoogate) .*?)\s*(?:#.*)?$")
_PATH_METAVAR = re.compile(r"DIR|FILE|PATH")


def readme_commands(prog: str) -> list[str]:
    """Lines of README.md's indented code blocks that start with `prog`, comments removed."""
    found = []
    for line in README.read_text(encoding="utf-8").splitlines():
        m = _CODE_LINE.match(line)
        if m and m["cmd"].split()[0] == prog:
            found.append(m["cmd"])
    return found


class _OptionRecorder:
    """Stands in for pytest's parser to read which zoogate options take a path (by their metavar)."""

    def __init__(self) -> None:
        self.metavars: dict[str, str] = {}

    def getgroup(self, *args, **kwargs) -> "_OptionRecorder":
        return self

    def addoption(self, *names, **kwargs) -> None:
        for name in names:
            self.metavars[name] = kwargs.get("metavar") or ""


def path_options() -> dict[str, str]:
    recorder = _OptionRecorder()
    core.pytest_addoption(recorder)
    return {name: mv for name, mv in recorder.metavars.items() if _PATH_METAVAR.search(mv)}


def _user_path(kind: str, outside: Path, n: int) -> Path:
    """An existing folder (DIR) or file (FILE/PATH) outside the checkout."""
    outside.mkdir(parents=True, exist_ok=True)
    path = outside / f"user-{n}"
    if kind == "dir":
        path.mkdir()
    else:
        path.write_bytes(b"")
    return path


def materialise(command: str, outside: Path, equals: bool) -> list[str]:
    """The README command with each path value replaced by an existing path outside the checkout."""
    options = path_options()
    words = shlex.split(command)
    out: list[str] = [sys.executable, "-m", "pytest"]
    i, n = 1, 0
    while i < len(words):
        word = words[i]
        if word in options and i + 1 < len(words):
            value = words[i + 1]
            name, sep, rest = value.partition("=")
            metavar = options[word]
            if sep:                                # NAME=FILE
                value = f"{name}={_user_path('file', outside, n)}"
            else:
                kind = "dir" if metavar.split("|")[0] == "DIR" else "file"
                value = str(_user_path(kind, outside, n))
            n += 1
            out += [f"{word}={value}"] if equals else [word, value]
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))}


def _is_lab(command: str) -> bool:
    words = shlex.split(command)
    return any(words[i] == "-m" and words[i + 1] in LAB_MARKERS for i in range(len(words) - 1))


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    # bytecode caching on: each run otherwise compiles and assertion-rewrites every test module again
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_readme_lists_the_lab_and_ci_commands():
    commands = readme_commands("pytest")
    assert 'pytest -m "not npu"' in commands
    assert any(c.startswith("pytest -m ascend --bs 4 --model-dir") for c in commands), commands
    assert sum(_is_lab(c) for c in commands) >= 3


def _jobs(outside: Path) -> list[tuple[str, Path, list[list[str]]]]:
    """Per README command: a folder of user paths and the runs to make in it, one after the other.

    A lab command with path options runs in both spellings; both runs share one --gate-report file, so the
    second run meets an existing report file (which must not become pytest's rootdir either). Other commands
    with path options run once, in the spelling their position picks."""
    jobs = []
    for n, command in enumerate(readme_commands("pytest")):
        where = outside / f"cmd{n}"
        where.mkdir()
        has_paths = any(w in path_options() for w in shlex.split(command))
        report = where / "gate-report.json"
        runs = []
        if has_paths and _is_lab(command):
            spellings = (False, True)
        else:
            spellings = (has_paths and n % 2 == 1,)
        for equals in spellings:
            argv = materialise(command, where / ("eq" if equals else "sp"), equals) if has_paths else \
                materialise(command, where, equals)
            if not _is_lab(command):
                argv.append("--collect-only")
            argv += ["-p", "no:randomly"]        # not -q: the header names the rootdir
            argv += [f"--gate-report={report}"] if equals else ["--gate-report", str(report)]
            runs.append(argv)
        jobs.append((command, where, runs))
    return jobs


def _check(command: str, argv: list[str], res: subprocess.CompletedProcess, rootdir: str | None) -> list[str]:
    spelling = "--opt=VALUE" if any(a.startswith("--gate-report=") for a in argv) else "--opt VALUE"
    what = f"{command!r} ({spelling})"
    text = res.stdout + res.stderr
    if res.returncode != 0:
        return [f"{what} exited {res.returncode}:\n{text[-1500:]}"]
    problems = []
    if "usage error" in text.lower() or "unrecognized arguments" in text:
        problems.append(f"{what} printed a usage error:\n{text[-1500:]}")
    if rootdir != str(ROOT):
        problems.append(f"{what}: rootdir {rootdir} is not the checkout {ROOT}")
    if _is_lab(command):
        last = text.strip().splitlines()[-1]
        if re.search(r"\d+ (passed|failed|error)", last) or "skipped" not in last:
            problems.append(f"{what}: expected every test skipped here, got {last!r}")
        reasons = [ln for ln in text.splitlines() if ln.startswith("SKIPPED")]
        if not reasons or any(not ln.split(":", 2)[-1].strip() for ln in reasons):
            problems.append(f"{what}: skips without a reason")
    return problems


def test_every_readme_pytest_command_runs_from_the_checkout(tmp_path_factory):
    outside = tmp_path_factory.mktemp("user-paths")
    jobs = _jobs(outside)
    before = {where: _snapshot(where) for _, where, _ in jobs}

    def run_job(job):
        command, where, runs = job
        done = []
        for argv in runs:
            res = _run(argv)
            rootdir = next((ln.split(":", 1)[1].strip() for ln in res.stdout.splitlines()
                            if ln.startswith("rootdir:")), None)
            done.append((argv, res, rootdir))
        return done

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run_job, jobs))
    problems = []
    for (command, where, _), results in zip(jobs, outcomes):
        for argv, res, rootdir in results:
            problems += _check(command, argv, res, rootdir)
        after = _snapshot(where)
        changed = sorted(k for k in set(before[where]) | set(after)
                         if before[where].get(k) != after.get(k) and not k.startswith("gate-report."))
        if changed:
            problems.append(f"{command!r} changed the user's paths: {changed}")
    assert not problems, "\n\n".join(problems)


def test_readme_zoogate_synopses_name_real_subcommands_and_flags():
    """Each `zoogate VERB [flags]` line of the README names a real subcommand and only its real flags."""
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if a.dest == "command").choices
    problems = []
    for line in readme_commands("zoogate"):
        words = line.split()
        verb = words[1]
        if verb not in verbs:
            problems.append(f"{line!r}: no subcommand {verb!r}")
            continue
        known = {s for a in verbs[verb]._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line):
            if flag not in known:
                problems.append(f"{line!r}: zoogate {verb} has no option {flag}")
    assert not problems, "\n".join(problems)
