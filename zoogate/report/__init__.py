"""The gate report: every GateRecord of a run and the environment it ran in, as JSON, a table and an fps plot.

One module per job:
- ``environment``: versions, vendor SDKs, devices, host fingerprint, seeds;
- ``document``: ``build_report(records, environment=..., run=...)`` -> the JSON document, ``write_report``,
  ``load_report(path)`` -> GateReport (ZoogateError naming the file on anything malformed);
- ``table``: ``render_table(records)`` / ``render_report(report)``, the terminal table ``zoogate report`` prints;
- ``plot``: ``plot_fps(records, path)``, fps vs batch size per runner with the floors dashed (matplotlib);
- ``diff``: ``diff_reports(old, new)``, what changed between two releases and which changes are regressions.
"""

from zoogate.report.diff import Change, ReportDiff, diff_reports, render_diff
from zoogate.report.document import (DEFAULT_PATH, SCHEMA, SCHEMA_VERSION, GateReport, build_report, check_writable,
                                     load_report, parse_report, summarize, write_report)
from zoogate.report.environment import default_seeds, environment
from zoogate.report.plot import FpsSeries, fps_series, plot_fps
from zoogate.report.table import ordered, render_report, render_summary, render_table

__all__ = ["Change", "ReportDiff", "diff_reports", "render_diff", "DEFAULT_PATH", "SCHEMA", "SCHEMA_VERSION",
           "GateReport", "build_report", "check_writable", "load_report", "parse_report", "summarize",
           "write_report", "default_seeds", "environment", "FpsSeries", "fps_series", "plot_fps", "ordered",
           "render_report", "render_summary", "render_table"]
