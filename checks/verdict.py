"""Verdicts: what a checker returns (the Jepsen/Elle model).

`valid` is True, False or "unknown". False needs evidence: every Anomaly names the
user, connection, seqs or ids and times that prove it. An empty or incomplete
history never passes: it gives "unknown".
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

UNKNOWN: Literal["unknown"] = "unknown"
Valid = bool | Literal["unknown"]
MAX_ANOMALIES = 100
"""Anomalies kept per verdict; stats["anomalies"] holds the true count."""


@dataclass
class Anomaly:
    """One proven problem: `kind` (stable, e.g. "out_of_order"), a sentence, evidence."""

    kind: str
    message: str
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, d: dict) -> Anomaly:
        return cls(d["kind"], d["message"], dict(d.get("evidence") or {}))


@dataclass
class Verdict:
    name: str
    valid: Valid
    anomalies: list[Anomaly] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only for a proven pass (not for "unknown")."""
        return self.valid is True

    def to_dict(self) -> dict:
        return {"name": self.name, "valid": self.valid,
                "anomalies": [a.to_dict() for a in self.anomalies], "stats": self.stats}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        return cls(d["name"], d["valid"], [Anomaly.from_dict(a) for a in d.get("anomalies", [])],
                   dict(d.get("stats") or {}))


def verdict(name: str, anomalies: list[Anomaly], stats: dict, known: bool, reason: str | None = None) -> Verdict:
    """False with any anomaly; else True when `known` (enough evidence), else unknown
    (with `reason`, when given, saying what evidence was missing)."""
    stats = dict(stats)
    stats["anomalies"] = len(anomalies)
    if reason and not anomalies and not known:
        stats["reason"] = reason
    valid: Valid = False if anomalies else (True if known else UNKNOWN)
    return Verdict(name, valid, anomalies[:MAX_ANOMALIES], stats)


def compose(verdicts: Iterable[Verdict], name: str = "all") -> Verdict:
    """Any False -> False; else any unknown (or none at all) -> unknown; else True."""
    verdicts = list(verdicts)
    values = [v.valid for v in verdicts]
    if any(v is False for v in values):
        valid: Valid = False
    elif not values or any(v is not True for v in values):
        valid = UNKNOWN
    else:
        valid = True
    anomalies = [a for v in verdicts for a in v.anomalies]
    stats = {v.name: {"valid": v.valid, **v.stats} for v in verdicts}
    return Verdict(name, valid, anomalies, stats)
