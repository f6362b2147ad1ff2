"""socketproof.verdicts.recovery_plot: the storm of each disruption, drawn on the run's clock with
a marker at its start and end, and written next to checks.json only when a disruption ran."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from checks import Verdict, compose
from socketproof.verdicts.judge import Judgement
from socketproof.verdicts.recovery_plot import RECOVERY_PNG, draw, main, plot_png, storms
from socketproof.verdicts.reports import CHECKS_JSON, JUNIT_XML, write_reports

T0 = 1_800_000_000.0
"""The run's start on the wall clock."""
RESTART = {"spec": "6s:restart", "at": 6.0, "action": "restart", "result": "done", "started_at": T0 + 6.02,
           "ended_at": T0 + 6.72, "connections_lost": 60, "storm_peak_per_s": 60, "recovery_s": {"p95": 2.2},
           "storm_per_s": [0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0]}
CUT = {"spec": "20s:cut", "at": 20.0, "action": "cut", "result": "done", "started_at": T0 + 20.03,
       "ended_at": T0 + 20.03, "connections_lost": 5, "storm_peak_per_s": 3, "storm_per_s": [3, 2, 0]}
NOT_RUN = {"spec": "90s:restart", "at": 90.0, "action": "restart", "result": "cancelled", "started_at": None}


def judgement(*disruptions: dict) -> Judgement:
    verdicts = [Verdict("ordering", True, [], {"anomalies": 0})]
    if disruptions:
        verdicts.append(Verdict("recovery", True, [], {"anomalies": 0, "disruptions": list(disruptions)}))
    return Judgement(verdicts, compose(verdicts), False)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_storms_are_the_recovery_verdicts_disruptions_that_ran() -> None:
    assert storms(judgement(RESTART, NOT_RUN, CUT).to_dict()) == [RESTART, CUT]
    assert storms(judgement().to_dict()) == []
    assert storms({}) == []


def test_bars_and_markers_sit_at_each_disruptions_time() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots()
    try:
        draw(ax, "storm", [RESTART, CUT])
        markers = sorted(round(line.get_xdata()[0], 2) for line in ax.lines)
        assert markers == [6.0, 6.7, 20.01], "start and end of the restart, the cut's start (it took no time)"
        bars = [(round(p.get_x(), 2), p.get_height()) for p in ax.patches if p.get_height()]
        assert bars == [(8.0, 60), (20.01, 3), (21.01, 2)], "1 s bins from each disruption's start"
        labels = ax.get_legend_handles_labels()[1]
        assert labels[0] == "6s restart: 60 lost, peak 60/s, 1 s with connects, back p95 2.2s", labels
    finally:
        plt.close(fig)


def test_reports_add_recovery_png_only_when_a_disruption_ran(tmp_path: Path) -> None:
    paths = write_reports(tmp_path / "drill", judgement(RESTART), {"host": "ws://127.0.0.1:1"})
    assert [p.name for p in paths] == [CHECKS_JSON, JUNIT_XML, RECOVERY_PNG]
    width, height = png_size(paths[2].read_bytes())
    assert width >= 600 and height >= 300
    quiet = write_reports(tmp_path / "quiet", judgement(NOT_RUN), {})
    assert [p.name for p in quiet] == [CHECKS_JSON, JUNIT_XML]
    assert not (tmp_path / "quiet" / RECOVERY_PNG).exists()


def test_the_command_line_stacks_runs_one_panel_each(tmp_path: Path) -> None:
    herd, spread = tmp_path / "herd.json", tmp_path / "spread.json"
    herd.write_text(json.dumps(judgement(RESTART).to_dict()))
    spread.write_text(json.dumps(judgement({**RESTART, "storm_per_s": [10, 20, 20, 10]}).to_dict()))
    out = tmp_path / "both.png"
    assert main([str(out), f"jitter=none={herd}", f"jitter=full={spread}"]) == 0
    one = png_size(plot_png([("one", [RESTART])]))
    both = png_size(out.read_bytes())
    assert both[0] == one[0] and both[1] > 1.5 * one[1], (one, both)
    assert main([str(out)]) == 2
