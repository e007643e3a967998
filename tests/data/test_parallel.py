"""ordered_map: results in input order, work really runs in parallel, errors surface."""

import os
import threading
from collections.abc import Sequence

import pytest

from imgclf.data.parallel import available_cores, ordered_map


def squares_with_thread(items: Sequence[int]) -> list[tuple[int, int]]:
    return [(item * item, threading.get_ident()) for item in items]


def fail_on_seven(items: Sequence[int]) -> list[int]:
    if 7 in items:
        raise ValueError("seven")
    return list(items)


@pytest.mark.parametrize("workers", [1, 2])
def test_order_is_kept(workers: int) -> None:
    results = [
        value
        for chunk in ordered_map(
            squares_with_thread, list(range(50)), chunk_size=3, workers=workers, max_in_flight=2
        )
        for value in chunk
    ]
    assert [square for square, _ in results] == [item * item for item in range(50)]
    threads = {thread for _, thread in results}
    assert (threads == {threading.get_ident()}) == (workers == 1)


def test_two_workers_run_at_the_same_time() -> None:
    # Each chunk waits until another chunk is running too; one worker at a time would time out.
    barrier = threading.Barrier(2, timeout=10)

    def meet(items: Sequence[int]) -> list[int]:
        barrier.wait()
        return list(items)

    chunks = list(ordered_map(meet, list(range(8)), chunk_size=2, workers=2, max_in_flight=2))
    assert chunks == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_worker_errors_reach_the_caller() -> None:
    with pytest.raises(ValueError, match="seven"):
        list(ordered_map(fail_on_seven, list(range(20)), chunk_size=2, workers=2, max_in_flight=3))


def test_available_cores() -> None:
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
