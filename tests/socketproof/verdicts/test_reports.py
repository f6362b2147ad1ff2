"""socketproof.verdicts.reports: checks.json, checks-junit.xml and the section in Locust's HTML report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import JUnitXml

from checks import UNKNOWN, Anomaly, Verdict, compose
from socketproof.verdicts.judge import Judgement
from socketproof.verdicts.reports import CHECKS_JSON, HTML_MARK, JUNIT_XML, add_to_html, write_reports

META = {"host": "ws://127.0.0.1:1", "checks": ["ordering", "loss", "heartbeat"], "connections": 3}


def make(strict: bool = False, evidence: str = "u1 is missing 2 seq(s)") -> Judgement:
    verdicts = [
        Verdict("ordering", True, [], {"anomalies": 0, "messages": 12}),
        Verdict("loss", False, [Anomaly("lost", evidence, {"user": "u1", "missing": [[3, 4]]})], {"anomalies": 1}),
        Verdict("heartbeat", UNKNOWN, [], {"anomalies": 0, "reason": "no server pings seen"}),
    ]
    return Judgement(verdicts, compose(verdicts), strict)


def cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {case.get("name"): case for case in root.iter("testcase")}


def test_checks_json_holds_meta_verdicts_and_exit_code(tmp_path: Path) -> None:
    paths = write_reports(tmp_path / "new" / "folder", make(), META)
    assert [p.name for p in paths] == [CHECKS_JSON, JUNIT_XML]
    data = json.loads(paths[0].read_text())
    assert data["host"] == META["host"] and data["connections"] == 3
    assert (data["valid"], data["strict"], data["exit_code"]) == (False, False, 1)
    assert [(v["name"], v["valid"]) for v in data["verdicts"]] == [
        ("ordering", True), ("loss", False), ("heartbeat", "unknown")]
    assert data["verdicts"][1]["anomalies"][0] == {
        "kind": "lost", "message": "u1 is missing 2 seq(s)", "evidence": {"user": "u1", "missing": [[3, 4]]}}


def test_junit_has_a_failure_for_false_and_skips_unknown(tmp_path: Path) -> None:
    write_reports(tmp_path, make(), META)
    found = cases(tmp_path / JUNIT_XML)
    assert set(found) == {"ordering", "loss", "heartbeat"}
    assert list(found["ordering"]) == [] or all(child.tag == "system-out" for child in found["ordering"])
    failure = found["loss"].find("failure")
    assert failure is not None and failure.get("type") == "lost"
    assert failure.get("message") == "u1 is missing 2 seq(s)"
    assert "lost: u1 is missing 2 seq(s)" in (failure.text or "")
    skipped = found["heartbeat"].find("skipped")
    assert skipped is not None and skipped.get("message") == "no server pings seen"
    assert found["heartbeat"].find("error") is None


def test_junit_with_strict_makes_unknown_an_error(tmp_path: Path) -> None:
    write_reports(tmp_path, make(strict=True), META)
    found = cases(tmp_path / JUNIT_XML)
    error = found["heartbeat"].find("error")
    assert error is not None and error.get("type") == "unknown"
    assert found["heartbeat"].find("skipped") is None
    assert json.loads((tmp_path / CHECKS_JSON).read_text())["exit_code"] == 1


def test_junit_file_reads_back_with_junitparser(tmp_path: Path) -> None:
    write_reports(tmp_path, make(), META)
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / JUNIT_XML))))
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (3, 1, 1, 0)


FORBIDDEN = "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)) + "\udfff\ud800\ufffe\uffff"
"""Every kind of character XML 1.0 forbids: C0 controls but tab/LF/CR, lone surrogates (in an order that
cannot pair), U+FFFE and U+FFFF."""


@pytest.mark.parametrize("strict", [False, True])
def test_junit_with_forbidden_characters_in_a_servers_text_still_parses(tmp_path: Path, strict: bool) -> None:
    """Issue 24, finding 10: one \\x1b from a server made checks-junit.xml unparseable (CI: "no results")."""
    text = "server said " + FORBIDDEN + " end"
    verdicts = [
        Verdict("loss", False, [Anomaly("lost" + FORBIDDEN, "u1 " + text, {"raw": text, text: [text]})],
                {"anomalies": 1, "last_frame": text}),
        Verdict("heartbeat", UNKNOWN, [], {"anomalies": 0, "reason": "pings: " + text}),
    ]
    write_reports(tmp_path, Judgement(verdicts, compose(verdicts), strict), META)
    found = cases(tmp_path / JUNIT_XML)  # xml.etree: raises on a single forbidden character
    failure = found["loss"].find("failure")
    assert failure is not None
    assert failure.get("message") == "u1 server said \\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\x0b\\x0c" \
        "\\x0e\\x0f\\x10\\x11\\x12\\x13\\x14\\x15\\x16\\x17\\x18\\x19\\x1a\\x1b\\x1c\\x1d\\x1e\\x1f" \
        "\\udfff\\ud800\\ufffe\\uffff end"
    assert failure.get("type", "").startswith("lost\\x00")
    assert "server said" in (failure.text or "")
    unknown = found["heartbeat"].find("error" if strict else "skipped")
    assert unknown is not None and "\\x1b" in (unknown.get("message") or "")
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / JUNIT_XML))))
    assert suite.tests == 2
    assert json.loads((tmp_path / CHECKS_JSON).read_text())["verdicts"][0]["anomalies"][0]["message"] == "u1 " + text


PAGE = "<html><head><title>Locust</title></head><body><div id='root'></div><script>x()</script></body></html>"


def test_html_section_goes_just_before_body_end() -> None:
    page = add_to_html(PAGE, make())
    section_at = page.index(HTML_MARK)
    assert page.index("<script>x()</script>") < section_at < page.index("</body>")
    assert page.endswith("</body></html>")
    assert "<h2>Socketproof checks</h2>" in page
    for check, mark in (("ordering", "PASS"), ("loss", "FAIL"), ("heartbeat", "UNKNOWN")):
        assert f"<td>{check}</td>" in page
        assert f">{mark}</td>" in page


def test_html_section_is_idempotent_and_replaced_by_newer_verdicts() -> None:
    once = add_to_html(PAGE, make())
    assert add_to_html(once, make()) == once
    newer = add_to_html(once, make(evidence="u9 is missing 1 seq(s)"))
    assert newer.count(HTML_MARK) == 1
    assert "u9 is missing" in newer and "u1 is missing" not in newer


def test_html_escapes_evidence_and_copes_without_body() -> None:
    page = add_to_html("<p>no body</p>", make(evidence="<script>alert(1)</script>"))
    assert page.startswith("<p>no body</p>" + HTML_MARK)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
