"""recovery.png: the reconnect storm after each --disrupt, with markers at its start and end.

A number says "peak 60/s"; the picture says whether the clients came back as one herd or
spread out, which is what a reconnect policy (--reconnect-backoff) decides. Drawn from the
recovery verdict's stats (checks/recovery.py: each disruption's `storm_per_s`, connections
opened per 1 s bin from its start), on the run's clock. Matplotlib runs headless (Agg).

`python -m socketproof.verdicts.recovery_plot OUT.png [TITLE=]checks.json ...` draws several
runs' storms one above the other on the same scale (e.g. a policy with and without jitter).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.figures import png_bytes

RECOVERY_PNG = "recovery.png"
COLOURS = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32")


def storms(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The disruptions that ran, with their storm, from a checks.json (or Judgement.to_dict())."""
    for verdict in report.get("verdicts") or []:
        if verdict.get("name") == "recovery":
            found = (verdict.get("stats") or {}).get("disruptions") or []
            return [d for d in found if d.get("started_at") is not None and d.get("storm_per_s") is not None]
    return []


def plot_png(panels: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> bytes:
    """One panel per (title, disruptions), stacked on one y scale, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels) + 0.6), dpi=110, squeeze=False,
                             sharey=True)
    try:
        for ax, (title, disruptions) in zip(axes[:, 0], panels):
            draw(ax, title, disruptions)
        axes[-1, 0].set_xlabel("seconds from the run's start")
        return png_bytes(fig)
    finally:
        plt.close(fig)


def draw(ax: Any, title: str, disruptions: Sequence[Mapping[str, Any]]) -> None:
    """Bars of connections opened per second after each disruption; a solid line at its start, a
    dashed one at its end. x is the run's clock: a disruption started `at` s after the run's start."""
    origin = min((float(d["started_at"]) - float(d.get("at") or 0.0) for d in disruptions), default=0.0)
    for index, d in enumerate(disruptions):
        colour = COLOURS[index % len(COLOURS)]
        start = float(d["started_at"]) - origin
        end = float(d.get("ended_at") or d["started_at"]) - origin
        per_second = list(d.get("storm_per_s") or [])
        name = f"{str(d.get('spec') or '').partition(':')[0]} {d.get('action') or ''}".strip()
        back = (d.get("recovery_s") or {}).get("p95")
        label = (f"{name}: {d.get('connections_lost', 0)} lost, peak {d.get('storm_peak_per_s', 0)}/s, "
                 f"{sum(1 for n in per_second if n)} s with connects" + (f", back p95 {back}s" if back is not None
                                                                         else ""))
        ax.bar([start + i for i in range(len(per_second))], per_second, width=1.0, align="edge", alpha=0.55,
               color=colour, edgecolor=colour, label=label)
        ax.axvline(start, color=colour, linewidth=1.5)
        if end - start > 0.05:
            ax.axvline(end, color=colour, linewidth=1.2, linestyle="--")
    ax.set_ylabel("connections opened / s")
    ax.set_title(title + ("" if disruptions else " (no disruption ran)"), fontsize=10)
    ax.grid(True, alpha=0.3)
    if disruptions:
        ax.legend(loc="upper right", fontsize=8)


def write(directory: str | Path, report: Mapping[str, Any], title: str = "Reconnect storm") -> Path | None:
    """recovery.png into `directory` when a disruption ran (None otherwise)."""
    disruptions = storms(report)
    if not disruptions:
        return None
    path = Path(directory) / RECOVERY_PNG
    path.write_bytes(plot_png([(f"{title} (solid line: a disruption starts, dashed: it ends)", disruptions)]))
    return path


def main(argv: Sequence[str]) -> int:
    """OUT.png then [TITLE=]checks.json ...: one panel per run."""
    if len(argv) < 2:
        sys.stderr.write("usage: python -m socketproof.verdicts.recovery_plot OUT.png [TITLE=]checks.json ...\n")
        return 2
    panels = []
    for arg in argv[1:]:
        title, _, path = arg.rpartition("=")
        panels.append((title or path, storms(json.loads(Path(path).read_text(encoding="utf-8")))))
    Path(argv[0]).write_bytes(plot_png(panels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
