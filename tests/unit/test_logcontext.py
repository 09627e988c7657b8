"""A logger's records held back in one context only (:class:`emovox.logcontext.LogHold`):
two threads holding the same logger's records back, ending out of order, each get their own
(a process-wide ``setLevel`` put the level back under the other: code review, stop 56)."""

from __future__ import annotations

import logging
import threading

import pytest

from emovox.logcontext import LogHold

NAME = "emovox.test_logcontext"


def test_two_threads_ending_out_of_order_hold_back_their_own_records(
        caplog: pytest.LogCaptureFixture) -> None:
    hold = LogHold(NAME)
    child = logging.getLogger(NAME + ".child")  # a child's records are held back too
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:  # holds back first, ends first
        with hold.held():
            child.warning("a held")
            a_in.set()
            b_in.wait(5)
        child.warning("a after")
        a_out.set()

    def second() -> None:  # holds back second, ends last
        a_in.wait(5)
        with hold.held():
            b_in.set()
            a_out.wait(5)
            child.warning("b held after a ended")
        child.warning("b after")

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=f) for f in (first, second)]
        for t in threads:
            t.start()
        with hold.held(active=False):  # holds nothing back
            a_in.wait(5)
            child.warning("main thread")
        for t in threads:
            t.join(5)
    said = [r.getMessage() for r in caplog.records]
    assert sorted(said) == ["a after", "b after", "main thread"]
    assert logging.getLogger(NAME).level == logging.NOTSET  # no level was set
