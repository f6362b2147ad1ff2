"""The capacity check's own options (registered with the rest by socketproof.run.options)."""

from __future__ import annotations

from typing import Any


def add_capacity_arguments(group: Any) -> None:
    """`--capacity`: step the load up until the SLO breaks (socketproof.capacity.shape). Read at start only."""
    group.add_argument(
        "--capacity",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="capacity check: add --step-users every --step-time up to --max-users, stop at the first step "
        "that breaks the SLO (--threshold, failures<1%%, any check), write capacity.json/.png/.html",
    )
    group.add_argument("--step-users", type=int, default=10, include_in_web_ui=False,
                       help="users added per capacity step (default 10)")
    group.add_argument("--step-time", default="20s", include_in_web_ui=False,
                       help="measured time per capacity step, after its users started: 20, 20s, 1m (default 20s)")
    group.add_argument("--max-users", type=int, default=200, include_in_web_ui=False,
                       help="last capacity step's users: bounds the run (default 200)")
    group.add_argument("--capacity-report", default="", include_in_web_ui=False,
                       help="folder for capacity.json, capacity.png, capacity.html (default: --checks-report)")
    group.add_argument("--capacity-baseline", default="", include_in_web_ui=False,
                       help="a previous capacity.json: exit 1 when the users held fell by more than the tolerance")
    group.add_argument("--capacity-tolerance", default="10%", include_in_web_ui=False,
                       help="allowed fall of capacity against --capacity-baseline (default 10%%)")
