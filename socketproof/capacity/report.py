"""The capacity check's outputs: capacity.json, capacity.png, capacity.html and console text.

The plot puts users on x, the SLO's latency percentiles (left axis) and throughput
(right axis) on y, draws each latency limit of the SLO as a line and marks the step
that broke it, and each --disrupt as a dash-dotted line at the step that was running when it
started (socketproof.capacity.markers). Matplotlib runs headless (Agg), so this works on any CI machine.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from checks import parse_threshold
from common.figures import png_bytes
from socketproof.capacity.steps import Comparison

CAPACITY_JSON = "capacity.json"
CAPACITY_PNG = "capacity.png"
CAPACITY_HTML = "capacity.html"
DISRUPTION_COLOUR = "#8e24aa"


def load_result(path: str | Path) -> dict[str, Any]:
    """A stored capacity.json (ValueError with the path when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the capacity baseline {path}: {error}") from None
    if not isinstance(data, dict) or "capacity" not in data or "steps" not in data:
        raise ValueError(f"{path} is not a capacity.json (no 'capacity' and 'steps')")
    return data


def write_all(
    directory: str | Path, result: Mapping[str, Any], comparison: Comparison | None = None, tolerance: float = 0.1
) -> list[Path]:
    """capacity.json, capacity.png and capacity.html into `directory` (created if needed)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / CAPACITY_JSON
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    png = plot_png(result)
    png_path = folder / CAPACITY_PNG
    png_path.write_bytes(png)
    html_path = folder / CAPACITY_HTML
    html_path.write_text(html_page(result, png, comparison, tolerance), encoding="utf-8")
    return [json_path, png_path, html_path]


# -- the plot -------------------------------------------------------------------


def latency_series(result: Mapping[str, Any]) -> list[tuple[str, str, float | None]]:
    """(request name, pNN key, SLO limit) to plot: the SLO's latency percentiles, else Aggregated p95."""
    series = []
    for expr in result.get("slo", []):
        t = parse_threshold(expr)
        if t.percentile is not None:
            key = f"p{t.percentile:g}"
            series.append((t.name, key, t.limit))
    return series or [("Aggregated", "p95", None)]


def _value(step: Mapping[str, Any], name: str, key: str) -> float | None:
    row = step.get("latency", {}).get(name) or {}
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def plot_png(result: Mapping[str, Any]) -> bytes:
    """The capacity plot as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = result.get("steps", [])
    users = [step["target_users"] for step in steps]
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    try:
        right = ax.twinx()
        right.plot(users, [step["rps"] for step in steps], "s--", color="#607d8b", label="round trips/s (all requests)")
        right.set_ylabel("round trips / s")
        right.set_ylim(bottom=0)
        colours = ["#1565c0", "#6a1b9a", "#00838f", "#ef6c00"]
        values: list[float] = []
        for index, (name, key, limit) in enumerate(latency_series(result)):
            colour = colours[index % len(colours)]
            points = [_value(step, name, key) for step in steps]
            values += [v for v in points if v is not None]
            ax.plot(users, [v if v is not None else float("nan") for v in points], "o-", color=colour,
                    label=f"{name} {key} (ms)")
            if limit is not None:
                ax.axhline(limit, color=colour, linestyle=":", linewidth=1.5, label=f"SLO {name} {key} < {limit:g} ms")
                values.append(limit)
        positive = [v for v in values if v > 0]
        if positive and max(positive) / max(min(positive), 1.0) > 50:
            ax.set_yscale("log")  # a broken step can be 100x the SLO: keep the held ones readable
        else:
            ax.set_ylim(0, max(values, default=1.0) * 1.15 or 1.0)
        _mark_steps(ax, result)
        _mark_disruptions(ax, result)
        if 0 < len(users) <= 20:
            ax.set_xticks(users)
        ax.set_xlabel("concurrent users")
        ax.set_ylabel("latency (ms)")
        host = result.get("host") or ""
        faults = result.get("server_faults") or {}
        title = "Socketproof capacity" + (f" — {host}" if host else "")
        if faults:
            title += " — faults: " + ",".join(f"{k}={v}" for k, v in faults.items())
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = right.get_legend_handles_labels()
        ax.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=8)
        return png_bytes(fig)
    finally:
        plt.close(fig)


def _mark_steps(ax: Any, result: Mapping[str, Any]) -> None:
    steps = {step["step"]: step for step in result.get("steps", [])}
    held = result.get("capacity_step")
    if held in steps:
        ax.axvline(steps[held]["target_users"], color="#2e7d32", linestyle="--", linewidth=1.2,
                   label=f"capacity: {steps[held]['users']} users")
    broke = result.get("broke_at")
    if broke and broke.get("step") in steps:
        step = steps[broke["step"]]
        reasons = "; ".join(broke.get("reasons") or [])
        why = f" ({reasons[:40]})" if reasons else ""
        ax.axvline(step["target_users"], color="#c62828", linestyle="--", linewidth=1.2,
                   label=f"broke at {step['target_users']} users{why}")


def _mark_disruptions(ax: Any, result: Mapping[str, Any]) -> None:
    """A line and its label (`restart @ 15s`) at each placed disruption; the legend says where each
    one fell, and lists those with no place (never ran, or steps without times) too."""
    stacked: dict[Any, int] = {}
    for marker in result.get("disruptions") or []:
        outcome = f", {marker['result']}" if marker.get("result") and marker.get("users") is not None else ""
        legend = f"disrupt {marker['label']}: {marker['where']}{outcome}"
        x = marker.get("users")
        if x is None:
            ax.plot([], [], " ", label=legend)
            continue
        ax.axvline(x, color=DISRUPTION_COLOUR, linestyle="-.", linewidth=1.4, label=legend)
        row = stacked[x] = stacked.get(x, -1) + 1
        ax.text(x, (0.55, 0.25, 0.85)[row % 3], marker["label"], transform=ax.get_xaxis_transform(), rotation=90,
                color=DISRUPTION_COLOUR, fontsize=8, ha="center", va="center",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5})


# -- text ---------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def progress_line(step: Any, max_steps: int, elapsed: float, remaining: float, slo: Sequence[str]) -> str:
    """One line per finished step, while the run goes."""
    parts = [
        f"capacity step {step.step}/{max_steps}: {step.users} users",
        f"{'-' if step.connections is None else step.connections} connections",
        f"{step.rps:.1f} round trips/s",
    ]
    for name, key, _ in latency_series({"slo": slo}):
        parts.append(f"{name} {key} {_ms((step.latency.get(name) or {}).get(key))} ms")
    verdict = "held" if step.held else "BROKE: " + "; ".join(step.reasons)
    parts.append(verdict)
    line = ", ".join(parts) + f" | elapsed {elapsed:.0f}s, at most {remaining:.0f}s left"
    if step.loadgen_cpu is not None and step.loadgen_cpu > 90:
        line += f" | load generator CPU {step.loadgen_cpu:.0f}%: the limit may be Locust's, try --processes"
    if not step.ramp_complete:
        line += f" | only {step.users} of {step.target_users} users started"
    if step.excused_failures:
        line += f" | {step.excused_failures} failed requests excused: during a --disrupt or its reconnect storm"
    return line


def summary(result: Mapping[str, Any], paths: Sequence[Path] = (), comparison: Comparison | None = None,
            baseline_path: str | None = None, tolerance: float = 0.1) -> str:
    """The console block printed at the end of the run."""
    lines = ["", f"Socketproof capacity (SLO: {', '.join(result.get('slo', []))})"]
    series = latency_series(result)
    head = f"{'Step':>4} {'Users':>6} {'Conns':>6} {'RT/s':>9} " + " ".join(
        f"{name + ' ' + key:>16}" for name, key, _ in series) + f" {'Fail%':>7}  Verdict"
    lines += [head, "-" * len(head)]
    for step in result.get("steps", []):
        fail = 100.0 * step["failures"] / step["requests"] if step["requests"] else 0.0
        conns = "-" if step["connections"] is None else str(step["connections"])
        cells = " ".join(f"{_ms(_value(step, name, key)):>16}" for name, key, _ in series)
        verdict = ("held" if step["held"] else "BROKE") + _excused(step)
        lines.append(
            f"{step['step']:>4} {step['users']:>6} {conns:>6} {step['rps']:>9.1f} {cells} {fail:>7.2f}  {verdict}"
        )
    lines.append(capacity_sentence(result))
    lines += [f"disrupt {m['label']}: {m['where']}" for m in result.get("disruptions") or []]
    final = result.get("final_checks") or {}
    if final.get("failing") and result.get("broke_at"):
        lines.append(
            f"note: the final checks ({', '.join(final['failing'])} FAIL) cover the whole run, the step that broke "
            "the SLO included; the held steps passed the checks at their end, so they do not change the capacity"
        )
    if comparison is not None:
        lines += ["", comparison_table(comparison, baseline_path, tolerance)]
    if paths:
        lines.append("Capacity reports: " + ", ".join(str(path) for path in paths))
    return "\n".join(lines)


def _excused(step: Mapping[str, Any]) -> str:
    excused = step.get("excused_failures") or 0
    return f" ({excused} failures excused: --disrupt)" if excused else ""


def capacity_sentence(result: Mapping[str, Any]) -> str:
    held, broke = result.get("capacity"), result.get("broke_at")
    if not result.get("steps"):
        return "Capacity: unknown (no step was measured)"
    if held is None:
        text = "Capacity: none - the first step already broke the SLO"
    else:
        conns = "-" if held["connections"] is None else held["connections"]
        text = (f"Capacity: {held['users']} users, {conns} connections, "
                f"{held['round_trips_per_s']:.1f} round trips/s (step {result.get('capacity_step')})")
    if broke:
        text += f"; broke at step {broke['step']} ({broke['users']} users): " + "; ".join(broke["reasons"])
    elif result.get("ceiling_reached"):
        text += f"; --max-users {result.get('max_users')} reached without breaking: capacity is at least this"
    if not result.get("complete", True):
        text += " (run cut short)"
    return text


def comparison_table(comparison: Comparison, baseline_path: str | None, tolerance: float) -> str:
    lines = [f"Capacity vs baseline {baseline_path or ''} (tolerance {tolerance:.0%} on users)",
             f"{'Figure':<16} {'Baseline':>12} {'This build':>12} {'Change':>9}"]
    for label, old, new, change in comparison.rows:
        lines.append(f"{label:<16} {_fmt(old):>12} {_fmt(new):>12} {_pct(change):>9}")
    lines += [f"note: {note}" for note in comparison.notes]
    if comparison.regressed:
        lines.append(f"REGRESSION: capacity fell from {comparison.baseline_users} to {comparison.users} users "
                     f"({_pct(comparison.change)}, more than {tolerance:.0%}): exit 1")
    else:
        lines.append(f"OK: capacity {comparison.users} users vs {comparison.baseline_users} "
                     f"({_pct(comparison.change)}), within {tolerance:.0%}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _pct(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


# -- the HTML page ----------------------------------------------------------------


def html_page(
    result: Mapping[str, Any], png: bytes, comparison: Comparison | None = None, tolerance: float = 0.1
) -> str:
    """A self-contained page: the plot (base64) and the step table."""
    image = base64.b64encode(png).decode("ascii")
    series = latency_series(result)
    head = "".join(f"<th>{html.escape(name)} {key} (ms)</th>" for name, key, _ in series)
    body = ""
    for step in result.get("steps", []):
        colour = "#2e7d32" if step["held"] else "#c62828"
        cells = "".join(f"<td>{_ms(_value(step, name, key))}</td>" for name, key, _ in series)
        verdict = ("held" if step["held"] else "BROKE: " + "; ".join(step["reasons"])) + _excused(step)
        body += (f"<tr><td>{step['step']}</td><td>{step['users']}</td><td>{_fmt(step['connections'])}</td>"
                 f"<td>{step['rps']:.1f}</td>{cells}<td>{step['failures']}/{step['requests']}</td>"
                 f"<td style=\"color:{colour}\">{html.escape(verdict)}</td></tr>")
    disrupted = "".join(f"<p>disrupt {html.escape(m['label'])}: {html.escape(m['where'])}</p>"
                        for m in result.get("disruptions") or [])
    gate = ""
    if comparison is not None:
        gate = f"<h2>Against the baseline</h2><pre>{html.escape(comparison_table(comparison, None, tolerance))}</pre>"
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Socketproof capacity</title></head>"
        "<body style=\"font-family:sans-serif;margin:2em\">"
        f"<h1>Socketproof capacity</h1><p>{html.escape(capacity_sentence(result))}</p>"
        f"<p>SLO: {html.escape(', '.join(result.get('slo', [])))}; steps of {result.get('step_users')} users, "
        f"{result.get('step_time')} s each, up to {result.get('max_users')} users.</p>{disrupted}"
        f"<img alt=\"capacity plot\" src=\"data:image/png;base64,{image}\">"
        "<table border=\"1\" cellpadding=\"6\" style=\"border-collapse:collapse\"><thead><tr>"
        f"<th>Step</th><th>Users</th><th>Connections</th><th>Round trips/s</th>{head}<th>Failed</th><th>Verdict</th>"
        f"</tr></thead><tbody>{body}</tbody></table>{gate}</body></html>\n"
    )
