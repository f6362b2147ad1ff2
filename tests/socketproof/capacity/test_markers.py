"""socketproof.capacity.markers as a pure function (steps with times + --disrupt records -> where
each goes on the users axis), and the capacity plot drawing them on a real matplotlib Axes."""

from __future__ import annotations

from typing import Any

from socketproof.capacity import markers, report

STEPS = [  # two 6 s steps from t=100: ramp and settle 3 s, then the measured window
    {"step": 1, "target_users": 3, "started_at": 100.0, "measure_started_at": 103.0, "ended_at": 106.0},
    {"step": 2, "target_users": 6, "started_at": 106.0, "measure_started_at": 109.0, "ended_at": 112.0},
]


def record(spec: str, started_at: float | None, result: str = "done") -> dict[str, Any]:
    at, _, action = spec.partition(":")
    return {"spec": spec, "at": float(at.rstrip("s")), "action": action.split()[0].partition("=")[0],
            "started_at": started_at, "ended_at": None if started_at is None else started_at + 0.5,
            "result": result, "detail": ""}


def test_each_disruption_goes_to_the_step_running_when_it_started() -> None:
    placed = markers.place(STEPS, [record("4s:restart", 104.0), record("7s:cut", 107.0),
                                   record("12s:pause=2s", 112.0)])
    assert [(m["label"], m["step"], m["users"], m["where"]) for m in placed] == [
        ("restart @ 4s", 1, 3, "step 1, measured window"),
        ("cut @ 7s", 2, 6, "step 2, ramp and settle"),
        ("pause @ 12s", 2, 6, "step 2, measured window"),  # the last moment of a step is still that step
    ]
    assert placed[0]["started_at"] == 104.0 and placed[0]["result"] == "done" and placed[0]["spec"] == "4s:restart"


def test_none_is_dropped_outside_the_steps() -> None:
    placed = markers.place(STEPS, [record("0s:run true", 99.0), record("13s:restart", 113.0),
                                   record("30s:restart", None, "cancelled")])
    assert [(m["users"], m["where"]) for m in placed] == [
        (3, "before the first step"),
        (6, "after the last step"),
        (None, "not run (cancelled)"),
    ]
    assert placed[0]["label"] == "run @ 0s"


def test_steps_without_times_leave_the_disruption_unplaced_but_listed() -> None:
    old = [{"step": 1, "target_users": 3}]  # a capacity.json from before the steps had times
    (marker,) = markers.place(old, [record("4s:restart", 104.0)])
    assert (marker["users"], marker["where"]) == (None, "no step time recorded")
    assert markers.place(STEPS, []) == []


def test_the_plot_draws_a_line_and_a_label_at_each_placed_disruption() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    result = {"disruptions": markers.place(STEPS, [record("4s:restart", 104.0), record("7s:cut", 107.0),
                                                   record("30s:restart", None, "cancelled")])}
    fig, ax = plt.subplots()
    try:
        report._mark_disruptions(ax, result)
        lines = [line for line in ax.lines if line.get_label().startswith("disrupt")]
        assert [line.get_xdata()[0] for line in lines if len(line.get_xdata())] == [3, 6]
        assert [text.get_text().strip() for text in ax.texts] == ["restart @ 4s", "cut @ 7s"]
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["disrupt restart @ 4s: step 1, measured window, done",
                          "disrupt cut @ 7s: step 2, ramp and settle, done",
                          "disrupt restart @ 30s: not run (cancelled)"]
    finally:
        plt.close(fig)
    summary = report.summary({"steps": [], "slo": [], **result})
    assert "disrupt restart @ 30s: not run (cancelled)" in summary
