"""Ordered, memory-bounded parallel map over worker threads, with a progress bar.

Threads, not processes: what is mapped here is OpenCV decoding and resizing, which release
the GIL, so threads keep every core busy without starting interpreters (about 0.5 s a run
with `spawn`) or pickling every decoded image back to the caller. bench/pack.py measured the
switch on 1,000 photos: 1,273-1,314 images/s against 975 for the process pool.
"""

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def available_cores() -> int:
    """CPU cores this process may use (respects taskset/cgroup affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def ordered_map(
    function: Callable[[Sequence[Item]], Result],
    items: Sequence[Item],
    *,
    chunk_size: int,
    workers: int,
    max_in_flight: int,
    **progress: Any,
) -> Iterator[Result]:
    """Yield `function(chunk)` for consecutive chunks of `items`, in order.

    At most `max_in_flight` chunks are queued or held at once, so memory is bounded by the
    chunk size, not by the number of items. `workers == 1` runs in the calling thread.
    `function` should spend its time outside the GIL (OpenCV, NumPy, file reads) for the
    workers to run in parallel. `progress` is passed to tqdm, which stays quiet when stderr
    is not a terminal.
    """
    chunks = [items[start : start + chunk_size] for start in range(0, len(items), chunk_size)]
    with tqdm(total=len(items), disable=None, **progress) as bar:
        for result, size in _map_chunks(function, chunks, workers, max(1, max_in_flight)):
            bar.update(size)
            yield result


def _map_chunks(
    function: Callable[[Sequence[Item]], Result],
    chunks: list[Sequence[Item]],
    workers: int,
    max_in_flight: int,
) -> Iterator[tuple[Result, int]]:
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield function(chunk), len(chunk)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[tuple[Future[Result], int]] = deque()
        try:
            for chunk in chunks:
                if len(pending) >= max_in_flight:
                    future, size = pending.popleft()
                    yield future.result(), size
                pending.append((pool.submit(function, chunk), len(chunk)))
            while pending:
                future, size = pending.popleft()
                yield future.result(), size
        finally:  # on error or early exit, do not wait for work nobody will read
            for future, _ in pending:
                future.cancel()
