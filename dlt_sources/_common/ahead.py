"""Several files read at once in worker threads, their blocks handed over in file order.

Parsing a block is mostly Arrow kernels, hashing and file reads, which release
the GIL: while the consumer writes one file's blocks, the next files are read
ahead on the other cores. Each worker keeps at most `depth` blocks waiting, so
memory stays bounded whatever the file sizes; the output is exactly what
reading the files one after the other gives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_F = TypeVar("_F")

# Files read at once: the machine this targets has two cores.
DEFAULT_WORKERS = 2
DEFAULT_DEPTH = 2


class _Done:
    """End of one file's blocks; carries the exception that ended it, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def read_ahead(
    files: Iterable[_F],
    blocks_of: Callable[[_F], Iterator[_T]],
    *,
    workers: int = DEFAULT_WORKERS,
    depth: int = DEFAULT_DEPTH,
) -> Generator[_T, None, None]:
    """`blocks_of(file)` for each file in order, up to `workers` files produced at once.

    An exception raised while producing a file's blocks is raised here, when the
    consumer reaches that file; stopping early stops the workers.
    """
    pending = list(files)
    if workers <= 1 or len(pending) <= 1:
        for file in pending:
            yield from blocks_of(file)
        return
    stop = threading.Event()

    def produce(file: _F, out: queue.Queue[_T | _Done]) -> None:
        if stop.is_set():
            return  # the consumer stopped before this file's turn

        def put(item: _T | _Done) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for block in blocks_of(file):
                if not put(block):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Done(err))
            return
        put(_Done())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read-ahead") as pool:
        queues: list[queue.Queue[_T | _Done]] = []
        try:
            for file in pending:
                out: queue.Queue[_T | _Done] = queue.Queue(maxsize=depth)
                queues.append(out)
                pool.submit(produce, file, out)
            for out in queues:
                while not isinstance(item := out.get(), _Done):
                    yield item
                if item.error is not None:
                    raise item.error
        finally:
            stop.set()  # a worker blocked on a full queue gives up; files not begun never are
