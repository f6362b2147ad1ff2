"""Senders that publish only to one listener, for the proxy's reorder proof
(tests/socketproof/proxy/test_locust_proxy.py).

A swap is seen only between two deliveries to one connection. In the default mix, deliveries
are about a fifth of what a connection gets (replies, acks, snapshots), so on a starved machine
a 20 s run could swap 120 messages and not one pair of deliveries. The sink gets nothing but
deliveries (and a ping every few seconds): any swap on its connection puts two of its server
seqs out of order, whatever the machine's load.
"""

from __future__ import annotations

from locust import constant, task

from socketproof import WebSocketUser, reported

SINK = "sink-p0-0"
"""The sink's identity: the first (and only) identity of its flow in the run's one process."""


class Sink(WebSocketUser):
    flow = "sink"
    fixed_count = 1
    uses = frozenset({"subscribe"})
    wait_time = constant(1)

    @task
    @reported
    def listen(self) -> None:
        self.connection()


class Sender(WebSocketUser):
    flow = "sender"
    wait_time = constant(0.05)

    @task
    @reported
    def send(self) -> None:
        self.publish(self.connection(), SINK)
