"""SIGTERM and SIGINT, one owner: the first asks the process to finish its work in flight."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: The signals that ask a comms process to stop: systemd's SIGTERM and Ctrl+C.
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """A stop request by signal, for `comms send`, `comms serve` and `comms worker`.

    The first SIGTERM or SIGINT sets `event`: a send run that watches it (its
    `SendOptions.stop`) finishes the messages in flight, records them, hands every other
    claimed row back and ends; `then` is called as well (`comms serve` stops its web server
    with it). A second Ctrl+C stops at once, as Ctrl+C always did; a second SIGTERM changes
    nothing (systemd sends SIGKILL when its stop timeout is over).
    """

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.event = threading.Event()
        self.then = then
        #: The name of the signal that asked to stop ("SIGTERM"), once one came.
        self.signal: str | None = None
        self._before: dict[int, Any] = {}

    def install(self) -> Shutdown:
        """Handle SIGTERM and SIGINT from now on (the main thread only, as Python wants)."""
        self._before = {number: signal.getsignal(number) for number in SIGNALS}
        self._install()
        return self

    def restore(self) -> None:
        """Put back the handlers from before `install` (a command run inside a longer-lived
        process, such as the test suite, leaves its signals as it found them)."""
        for number, handler in self._before.items():
            signal.signal(number, handler)

    def _install(self) -> None:
        for number in SIGNALS:
            signal.signal(number, self._handle)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Python's own handling for a while (a question on the terminal: Ctrl+C aborts it)."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            yield
        finally:
            self._install()

    @property
    def requested(self) -> bool:
        """True once a signal asked the process to stop."""
        return self.event.is_set()

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            if number == signal.SIGINT:
                raise KeyboardInterrupt  # pressed twice: the operator means now
            return
        self.signal = signal.Signals(number).name
        self.event.set()
        if self.then is not None:
            self.then()
