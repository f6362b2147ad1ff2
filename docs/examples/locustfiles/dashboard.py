"""A dashboard: listens to a feed the backend publishes and never writes (docs/flows.md).

Any adapter whose server pushes messages on its own (tickers, notifications, live scores):
here docs/examples/feed_adapter.py, whose connections subscribe to the channels in
FEED_CHANNELS. Nobody in the run publishes, so there are no stamps: the agreement check
compares what the subscribers of each channel got (missed, duplicated, reordered messages).

    FEED_CHANNELS=feed-0,feed-1 locust -f dashboard.py --headless \\
        --protocol /path/to/socketproof/docs/examples/feed_adapter.py:FeedAdapter \\
        --host ws://host:port --users 100 --run-time 60s
"""

from __future__ import annotations

from locust import constant, task

from socketproof import WebSocketUser, reported


class Dashboard(WebSocketUser):
    flow = "dashboard"
    uses = frozenset({"subscribe"})  # what the pre-flight tries for this flow: no echo, no publish
    wait_time = constant(1)

    @task
    @reported
    def watch(self) -> None:
        """Keep the connection up (reopened if the server closed it or went silent); read nothing
        by hand: every message it receives is recorded."""
        self.connection()
