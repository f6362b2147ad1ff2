"""Report files of a run's verdicts: checks.json, a JUnit XML file, the --html report section, and
recovery.png (socketproof.verdicts.recovery_plot) when a --disrupt ran."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

from client.deps import installed
from socketproof.verdicts import recovery_plot
from socketproof.verdicts.judge import Judgement, rows

with installed():
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

CHECKS_JSON = "checks.json"
JUNIT_XML = "checks-junit.xml"
HTML_MARK = "<!-- socketproof-checks -->"
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What XML 1.0 cannot hold even escaped (its Char production): other C0 controls, lone
surrogates, U+FFFE and U+FFFF."""


def write_reports(directory: str | os.PathLike[str], judgement: Judgement, meta: dict[str, Any]) -> list[Path]:
    """Write checks.json and checks-junit.xml into `directory` (created if needed), and
    recovery.png when a disruption ran."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / CHECKS_JSON
    report = {**meta, **judgement.to_dict()}
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    junit_path = folder / JUNIT_XML
    junit(judgement).write(str(junit_path), pretty=True)
    plot = recovery_plot.write(folder, report)
    return [json_path, junit_path, *([plot] if plot is not None else [])]


def xml_text(value: object) -> str:
    """`value` as text any XML parser reads back: each character XML 1.0 forbids (a server's
    \\x00 or \\x1b in an anomaly's evidence) written as a visible escape like `\\x1b`.
    Without this one such character makes the whole file unparseable, and CI reads "no results"."""
    return _NOT_XML.sub(_escaped, str(value))


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def junit(judgement: Judgement) -> JUnitXml:
    """One test case per check: False is a failure, unknown is skipped (an error with --strict).
    Every text and attribute goes through xml_text."""
    suite = TestSuite("socketproof.checks")
    for verdict in judgement.verdicts:
        case = TestCase(xml_text(verdict.name), classname="socketproof.checks")
        details = "\n".join(
            f"{anomaly.kind}: {anomaly.message} {json.dumps(anomaly.evidence, default=str)}"
            for anomaly in verdict.anomalies
        )
        if verdict.valid is False:
            first = verdict.anomalies[0] if verdict.anomalies else None
            failure = Failure(xml_text(first.message if first else "check failed"),
                              xml_text(first.kind if first else "failed"))
            failure.text = xml_text(details)
            case.result = [failure]
        elif verdict.valid is not True:
            reason = xml_text(verdict.stats.get("reason") or "not enough evidence to decide")
            case.result = [Error(reason, "unknown")] if judgement.strict else [Skipped(reason)]
        case.system_out = xml_text(json.dumps(verdict.stats, default=str))
        suite.add_testcase(case)
    xml = JUnitXml("socketproof")
    xml.add_testsuite(suite)
    return xml


def html_section(judgement: Judgement) -> str:
    """A self-contained block for Locust's HTML report."""
    colour = {"PASS": "#2e7d32", "FAIL": "#c62828", "UNKNOWN": "#ef6c00"}
    body = "".join(
        "<tr>"
        f"<td>{html.escape(row['check'])}</td>"
        f"<td style=\"color:{colour[row['verdict']]};font-weight:bold\">{row['verdict']}</td>"
        f"<td style=\"text-align:right\">{row['anomalies']}</td>"
        f"<td>{html.escape(row['evidence'])}</td>"
        "</tr>"
        for row in rows(judgement)
    )
    return (
        f"{HTML_MARK}<section id=\"socketproof-checks\" style=\"font-family:sans-serif;margin:2em\">"
        "<h2>Socketproof checks</h2>"
        "<table border=\"1\" cellpadding=\"6\" style=\"border-collapse:collapse\">"
        "<thead><tr><th>Check</th><th>Verdict</th><th>Anomalies</th><th>First evidence</th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def add_to_html(page: str, judgement: Judgement) -> str:
    """Insert (or replace) the checks section just before </body>."""
    if HTML_MARK in page:
        start = page.index(HTML_MARK)
        end = page.index("</section>", start) + len("</section>")
        page = page[:start] + page[end:]
    section = html_section(judgement)
    index = page.rfind("</body>")
    return page + section if index < 0 else page[:index] + section + page[index:]
