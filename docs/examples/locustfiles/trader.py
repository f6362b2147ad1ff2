"""A trading screen: subscribes to many symbols, publishes rarely (docs/flows.md).

Any adapter with SUBSCRIBE (rooms or subscriptions): Socket.IO, GraphQL subscriptions, your own.
Each trader watches WATCHED of SYMBOLS symbols and, now and then, publishes an order and its
amendments to one of them; every other trader watching that symbol is owed it, in order, once. The checks judge it
from the stamps with no code here.

    locust -f trader.py --headless --protocol socketio --host ws://host:port --users 50 --run-time 60s
"""

from __future__ import annotations

from locust import between, task

from client.adapter import SUBSCRIBE
from socketproof import WebSocketUser, reported

SYMBOLS = [f"sym-{n}" for n in range(40)]
WATCHED = 12


class Trader(WebSocketUser):
    flow = "trader"
    needs = frozenset({SUBSCRIBE})
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.watched = self.rng.sample(SYMBOLS, WATCHED)
        self.subscribed_on: str | None = None  # the label of the connection that holds the subscriptions
        self.watch()

    def watch(self) -> None:
        """The main connection, with every watched symbol subscribed (again after a reconnect)."""
        client = self.connection()
        if self.subscribed_on != client.label:
            for symbol in self.watched:
                client.subscribe(symbol)
            self.subscribed_on = client.label

    @task(10)
    @reported
    def look(self) -> None:
        """Most of the time a trader only reads: keep the connection and its subscriptions up."""
        self.watch()

    @task(1)
    @reported
    def order(self) -> None:
        """An order, then its amendments: a short burst on one symbol, which must arrive in order."""
        self.watch()
        symbol = self.rng.choice(self.watched)
        for _ in range(self.rng.randint(2, 4)):
            self.publish(self.connection(), symbol)
