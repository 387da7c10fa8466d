"""A bound on the admin page's heavy requests (photographs decoded, faces detected and embedded).

Each one takes a CPU core and tens of megabytes for a second or more; a few at once starved the door and six
got the process killed (issue 11). Only ``slots`` run at a time; a request that finds them busy waits up to
``wait_seconds`` and is then answered 503 with ``Retry-After``, so a flood costs a queue, not memory.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from bottle import HTTPError

logger = logging.getLogger(__name__)


class HeavyGate:
    """``with gate():`` around a heavy request's work."""

    def __init__(self, *, slots: int = 1, wait_seconds: float = 5.0, retry_after: int = 10):
        self.slots = int(slots)
        self.wait_seconds = float(wait_seconds)
        self.retry_after = int(retry_after)
        self._semaphore = threading.BoundedSemaphore(self.slots)
        self.refused = 0

    @contextmanager
    def __call__(self):
        if not self._semaphore.acquire(timeout=self.wait_seconds):
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                logger.warning("web: %d photograph requests refused because %d were already running",
                               self.refused, self.slots)
            raise HTTPError(503, "The door is busy with other photographs. Try again in a few seconds.",
                            headers={"Retry-After": str(self.retry_after)})
        try:
            yield
        finally:
            self._semaphore.release()
