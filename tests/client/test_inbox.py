"""client/inbox.py: unread pushes, bounded, and the mark each connection's end leaves."""

from __future__ import annotations

import pytest

from client import inbox as inbox_module
from client.errors import ConnectionClosed, Timeout
from client.inbox import Inbox

CLOSED = ConnectionClosed(1000, "bye")


def test_pushes_come_out_oldest_first_and_a_wait_times_out() -> None:
    inbox = Inbox()
    inbox.add(1)
    inbox.add(2)
    assert inbox.next(0.1, lambda: None) == 1
    assert inbox.drain(lambda: None) == [2]
    with pytest.raises(Timeout, match="no push within 0.01s"):
        inbox.next(0.01, lambda: None)


def test_beyond_the_limit_the_oldest_is_dropped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "LIMIT", 2)
    inbox = Inbox()
    for n in range(5):
        inbox.add(n)
    assert inbox.dropped == 3 and inbox.drain(lambda: None) == [3, 4]


def test_the_end_of_a_connection_is_raised_once_the_inbox_is_empty_and_stays() -> None:
    inbox = Inbox()
    inbox.add("last")
    inbox.mark_closed()
    assert inbox.next(0.1, lambda: CLOSED) == "last"
    for _ in range(2):  # the mark stays for the next reader
        with pytest.raises(ConnectionClosed) as caught:
            inbox.next(0.1, lambda: CLOSED)
        assert caught.value is CLOSED
    assert inbox.drain(lambda: CLOSED) == []


def test_a_mark_of_an_earlier_connection_is_skipped() -> None:
    inbox = Inbox()
    inbox.mark_closed()  # that connection ended; a new one is live
    inbox.add("new")
    assert inbox.next(0.1, lambda: None) == "new"
    inbox.mark_closed()
    inbox.add("newer")
    assert inbox.drain(lambda: None) == ["newer"]
