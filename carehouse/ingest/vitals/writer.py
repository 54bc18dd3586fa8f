"""The drain's writer thread: batch transactions on their own connection, in order.

The main thread consumes and renders COPY text while this thread runs the previous batch's
transaction, so Python and Postgres work at the same time.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from typing import Literal

import psycopg

from carehouse.ingest.vitals.batches import write_batch
from carehouse.ingest.vitals.errors import Fenced
from carehouse.ingest.vitals.messages import RenderedBatch

Outcome = Literal["committed", "fenced"]


class BatchWriter:
    """Runs batch transactions on its own connection, one at a time, in submission order.

    After a fenced batch it drops what follows until `resume()`: those batches
    started from offsets that are no longer true.
    """

    def __init__(self, conn: psycopg.Connection, topic: str, max_open_seconds: float) -> None:
        self._conn = conn
        self._topic = topic
        self._max_open_seconds = max_open_seconds
        self._pending: queue.Queue[RenderedBatch | None] = queue.Queue(maxsize=1)
        self._outcomes: deque[tuple[RenderedBatch, Outcome]] = deque()
        self._error: BaseException | None = None
        self._fenced = False
        self._thread = threading.Thread(target=self._run, name="vitals-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: RenderedBatch) -> None:
        """Queue a batch; blocks while the previous one is still being written."""
        self._raise()
        self._pending.put(batch)

    def flush(self) -> None:
        """Wait until every submitted batch is committed, fenced or dropped."""
        self._pending.join()
        self._raise()

    def outcomes(self) -> list[tuple[RenderedBatch, Outcome]]:
        """Batches finished since the last call."""
        done = []
        while self._outcomes:
            done.append(self._outcomes.popleft())
        return done

    def resume(self) -> None:
        """Accept batches again after a fence (call after flush, with fresh positions)."""
        self._fenced = False

    def close(self, *, wait: bool = True) -> None:
        """Stop the thread once the queue is empty; `wait=False` after a failure elsewhere."""
        if wait:
            self._pending.put(None)
            self._thread.join()
            self._raise()
            return
        # The batch in flight, if any, is cut off when the caller closes the connection: it
        # rolls back. The thread is a daemon, so a full queue cannot keep the process alive.
        with contextlib.suppress(queue.Full):
            self._pending.put_nowait(None)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            batch = self._pending.get()
            try:
                if batch is None:
                    return
                if self._error is None and not self._fenced:
                    try:
                        write_batch(
                            self._conn,
                            batch,
                            self._topic,
                            max_open_seconds=self._max_open_seconds,
                        )
                    except Fenced:
                        self._fenced = True
                        self._outcomes.append((batch, "fenced"))
                    else:
                        self._outcomes.append((batch, "committed"))
            except BaseException as err:  # noqa: BLE001 - handed to the main thread, re-raised there
                self._error = err
            finally:
                self._pending.task_done()
