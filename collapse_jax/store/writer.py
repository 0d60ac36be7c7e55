"""One background thread that does a run's file work (metric appends, fsync, checkpoint saves) in submission order.

The host loop hands each chunk's writes over and goes back to the device; a failed write is raised in the host loop
at its next submit or flush, and nothing submitted after it runs (a checkpoint never commits past rows that failed).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

# Jobs waiting at most: a chunk's appends, its checkpoint and the next chunk's appends. The bound keeps the host copies
# of metrics in flight to a few chunks when the disk is slower than the device (the loop then waits here).
QUEUE_LENGTH = 4


class OrderedWriter:
    """Runs submitted jobs one at a time, in order, on a daemon thread (threaded=False: at once, in the caller)."""

    def __init__(self, threaded: bool = True):
        self.threaded = threaded
        self._error: BaseException | None = None
        self._jobs: queue.Queue = queue.Queue(maxsize=QUEUE_LENGTH)
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._work, name="collapse-writer", daemon=True)
            self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` after every job submitted before it; raises the error of a job that failed earlier."""
        self._raise()
        if not self.threaded:
            job()
            return
        self._jobs.put(job)

    def flush(self) -> None:
        """Wait until every submitted job has run; raises the first error among them."""
        if self.threaded:
            self._jobs.join()
        self._raise()

    def close(self) -> None:
        """Run what is queued, then stop the thread (errors stay for a flush to raise)."""
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        failed = False
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if not failed:
                    job()
            except BaseException as error:  # handed to the host loop; later jobs are skipped
                self._error, failed = error, True
            finally:
                self._jobs.task_done()
