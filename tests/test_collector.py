"""The garbage collector held back during a batch, and given back its thresholds after."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from comms.content import reader
from comms.core.collector import BATCH_THRESHOLDS, batch
from comms.core.config import DEFAULT_REGIONS, DEFAULT_TOPICS

from .conftest import ROOT


@pytest.fixture(autouse=True)
def _defaults() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_a_batch_raises_the_thresholds_and_restores_them() -> None:
    with batch():
        assert gc.get_threshold() == BATCH_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_higher_thresholds_than_the_batch_s_are_kept() -> None:
    high = BATCH_THRESHOLDS[0] * 2
    gc.set_threshold(high, 1, 1)
    with batch():
        assert gc.get_threshold() == (high, *BATCH_THRESHOLDS[1:])
    assert gc.get_threshold() == (high, 1, 1)


def test_nested_batches_and_an_error_restore_once_the_last_ends() -> None:
    with pytest.raises(RuntimeError), batch():
        with batch():
            pass
        assert gc.get_threshold() == BATCH_THRESHOLDS
        raise RuntimeError
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_batches_in_threads_leave_the_defaults() -> None:
    """A batch that ends while another thread's runs keeps it held back; the last restores."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with batch():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with batch():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.get_threshold())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [BATCH_THRESHOLDS]
    assert gc.get_threshold() == (700, 10, 10)


def test_a_decorated_function_runs_in_a_batch() -> None:
    @batch()
    def inside() -> tuple[int, int, int]:
        return gc.get_threshold()

    assert inside() == BATCH_THRESHOLDS
    assert inside() == BATCH_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_content_is_read_in_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[tuple[int, int, int]] = set()
    read_file = reader.read_file

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.add(gc.get_threshold())
        return read_file(*args, **kwargs)

    monkeypatch.setattr(reader, "read_file", recording)
    reader.read_content(
        ROOT / "content", ZoneInfo("Europe/Berlin"), DEFAULT_REGIONS, DEFAULT_TOPICS
    )
    assert seen == {BATCH_THRESHOLDS}
    assert gc.get_threshold() == (700, 10, 10)


def test_what_lives_before_a_batch_is_frozen_until_the_last_ends() -> None:
    assert gc.get_freeze_count() == 0
    with batch():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        made = [[n] for n in range(1000)]  # alive when the inner batch starts
        with batch():
            # The inner batch freezes what the outer one made so far (a command's site read
            # before it builds), give or take objects that died by their reference count.
            inner = gc.get_freeze_count()
            assert inner >= frozen + 900
        assert 0 < gc.get_freeze_count() <= inner  # still frozen after the inner one
        del made
    assert gc.get_freeze_count() == 0


def test_a_cycle_left_before_a_batch_is_collected_after_it() -> None:
    class Node:
        other: Any = None

    collected = threading.Event()
    first, second = Node(), Node()
    first.other, second.other = second, first

    weakref.finalize(first, collected.set)
    del first, second
    with batch():
        gc.collect()
        assert not collected.is_set()  # frozen: not walked while the batch runs
    gc.collect()
    assert collected.is_set()
