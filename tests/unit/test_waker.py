"""The loop's wake pipe (``summaryd.daemon.waker``): no wake-up is ever lost."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator

import pytest

from summaryd.daemon.waker import Waker


@pytest.fixture
def waker() -> Iterator[Waker]:
    w = Waker()
    try:
        yield w
    finally:
        w.close()


def readable(w: Waker) -> bool:
    return bool(select.select([w.r], [], [], 0)[0])


def test_a_wake_after_a_clear_wakes_the_poll(waker: Waker) -> None:
    for _ in range(3):
        waker.wake()
        waker.wake()  # one byte per wake-up, however many calls
        assert readable(waker)
        waker.clear()
        assert not readable(waker)


def test_a_wake_while_the_loop_clears_is_not_lost(waker: Waker) -> None:
    """Another thread wakes just as the loop empties the pipe: the next wake
    still reaches the poll.  (With the flag reset before the pipe was emptied,
    that thread's byte was swallowed, the flag stayed set, and every later
    wake was lost: the loop woke only on its timer.)"""
    drain = waker._drain

    def a_thread_wakes_then_drain() -> None:
        t = threading.Thread(target=waker.wake)
        t.start()
        t.join()
        drain()

    waker.wake()
    waker._drain = a_thread_wakes_then_drain  # type: ignore[method-assign]
    waker.clear()
    waker._drain = drain  # type: ignore[method-assign]
    waker.wake()
    assert readable(waker)


def test_wakes_from_many_threads_while_clearing_always_reach_the_poll(waker: Waker) -> None:
    stop = threading.Event()

    def wake_often() -> None:
        while not stop.is_set():
            waker.wake()

    threads = [threading.Thread(target=wake_often) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            waker.clear()
    finally:
        stop.set()
        for t in threads:
            t.join()
    waker.wake()  # after the storm, one more wake-up must be seen
    assert readable(waker)
