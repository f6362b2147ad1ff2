"""socketproof.run.users.ConnectionFacts: a delivery from another process is reported as `deliver`
corrected by both processes' clock offsets, and left out while either is unknown.

A real Locust Environment and user (no connection is opened); the offsets table is the one the
master's broadcast fills on a worker (socketproof.run.clock_sync), filled here by hand.
"""

from __future__ import annotations

import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl

from client.adapter import Delivery, Stamp
from socketproof.run import clock
from socketproof.run.context import RunContext
from socketproof.run.users import ConnectionFacts
from tests.socketproof.run.test_users import Probe, count, environment

OTHER = "@w1.bbbbbb"
"""Another process's tag: its clock reads 0.5 s ahead of the master's."""


def test_a_cross_process_delivery_is_corrected_by_both_offsets_or_left_out() -> None:
    env = environment("ws://127.0.0.1:9")  # no connection is opened
    user = Probe(env)
    own = RunContext.of(env).state().process_tag
    delivered = ConnectionFacts(user)
    sent = clock.now() + 0.5 - 0.030  # 30 ms ago, on the other process's clock
    delivered(Delivery(user.identity, Stamp(f"probe-w1-0#1{OTHER}", "x", 1, sent), seq=1))
    assert count(env, "deliver") == 0, "no offset known: left out, never uncorrected"
    user.clock_offsets.update({OTHER: [0.5, 0.0002]})
    delivered(Delivery(user.identity, Stamp(f"probe-w1-0#1{OTHER}", "x", 2, sent), seq=2))
    assert count(env, "deliver") == 0, "this process's own offset unknown: left out"
    user.clock_offsets.update({OTHER: [0.5, 0.0002], own: [0.0, 0.0002]})
    delivered(Delivery(user.identity, Stamp(f"probe-w1-0#1{OTHER}", "x", 3, sent), seq=3))
    delivered(Delivery(user.identity, Stamp(f"probe-w1-0#1{OTHER}", "x", 4, sent), replay=True))
    entry = env.stats.get("deliver", "WS")
    assert entry.num_requests == 1, "one corrected delivery (a replay is no new delivery)"
    assert 29 <= entry.max_response_time < 200, "30 ms, not 530: the sender's 0.5 s are taken out"
