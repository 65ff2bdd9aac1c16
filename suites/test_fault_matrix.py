"""The fault matrix: every planted deployment fault is caught, end to end, by the gate named for it.

The README's table is generated from zoogate.faults.FAULTS (`zoogate faults`); a test keeps them equal.
"""

from pathlib import Path

import pytest

from zoogate import faults
from zoogate.record import FAIL, GATE_KINDS

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("fault", faults.FAULTS, ids=[f.id for f in faults.FAULTS])
def test_fault_is_caught(fault):
    record = fault.run()
    assert (record.gate, record.check) == (fault.gate, fault.check), (
        f"{fault.id} was judged by {record.gate}:{record.check}, expected {fault.gate}:{fault.check}\n"
        + record.explain())
    assert record.status == FAIL, f"planted fault {fault.id!r} was NOT caught:\n{record.explain()}"
    if fault.bisected:                  # an ONNX candidate: the failure names where the graph left the reference
        first = (record.details["bisect"].get("first_divergence") or {}).get("node")
        assert first and first in record.reason, f"{fault.id}: no first divergent node in\n{record.explain()}"
    planted = record.details.get("planted_node")
    if planted is not None:             # a graph edit: the failure must name the exact node
        found = record.details["bisect"]
        named = {(found.get("first_divergence") or {}).get("node"), (found.get("inserted_node") or {}).get("node")}
        assert planted in named, f"{fault.id}: bisect named {named - {None}}, the fault is at {planted!r}"
        assert planted in record.reason


WITH_CONTROL = [f for f in faults.FAULTS if f.control is not None]


@pytest.mark.parametrize("fault", WITH_CONTROL, ids=[f.id for f in WITH_CONTROL])
def test_gate_passes_without_the_fault(fault):
    """The control: the same gate on the same data without the planted fault must PASS, so the matrix
    shows the gate discriminates rather than failing everything."""
    record = fault.control()
    assert (record.gate, record.check) == (fault.gate, fault.check)
    assert record.passed, f"control for {fault.id!r} did not pass:\n{record.explain()}"


def test_matrix_has_at_least_twelve_faults_over_all_gate_kinds():
    assert len(faults.FAULTS) >= 12
    assert len({f.id for f in faults.FAULTS}) == len(faults.FAULTS)
    assert {f.gate for f in faults.FAULTS} == set(GATE_KINDS)


def test_readme_carries_the_generated_matrix():
    """The README table is `zoogate faults` output: regenerate it there when the matrix changes."""
    assert faults.markdown_table() in README.read_text(encoding="utf-8"), (
        "README.md fault matrix is out of date: paste the output of `zoogate faults`")


def test_fault_rows_leave_nothing_in_the_temp_folder(tmp_path):
    """The rows' data sets, result folders and bisect profiles live in one scratch folder removed at exit."""
    import os
    import subprocess
    import sys

    code = ("from zoogate.faults_primary import scratch; a, b = scratch(), scratch('bisect-'); "
            "(a / 'x').write_text('x'); print(a.parent == b.parent, a.parent)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    shared, folder = res.stdout.split()
    assert shared == "True", res.stdout
    assert Path(folder).parent == tmp_path and not Path(folder).exists() and not any(tmp_path.iterdir())
