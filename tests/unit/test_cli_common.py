"""emovox.cli.common helpers that need no model."""

from __future__ import annotations

import os
import signal

import pytest

from emovox.cli.common import DeferredCtrlC


def test_a_first_ctrl_c_is_held_until_a_safe_point_a_second_stops_at_once():
    """In `timeline` a Ctrl-C landed inside onnxruntime's import (a traceback, exit 1) or
    inside a region being classified (it showed as a gap): QA re-check, stop 37."""
    before = signal.getsignal(signal.SIGINT)
    with DeferredCtrlC() as ctrl_c:
        assert not ctrl_c.pending
        os.kill(os.getpid(), signal.SIGINT)
        assert ctrl_c.pending  # held: nothing raised here
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # given back


def test_sigterm_is_held_to_the_same_safe_point_and_delivered_after(monkeypatch):
    """SIGTERM interrupted a streamed `timeline --csv` between two segments (rows out of
    order on stdout): it is held as Ctrl-C is and raised again when the block ends, so the
    command still exits as SIGTERM says (diff review, stop 48)."""
    got: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda num, _f: got.append(num))
    try:
        with DeferredCtrlC() as ctrl_c:
            os.kill(os.getpid(), signal.SIGTERM)
            assert ctrl_c.pending and got == []  # held
        assert got == [signal.SIGTERM]  # delivered to the handler before, once
    finally:
        signal.signal(signal.SIGTERM, before)
