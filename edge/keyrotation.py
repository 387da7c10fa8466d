"""``edge-face keys rotate``: re-encrypt the database and the access log under a new key, safely.

The steps, each one atomic on disk, so a SIGKILL anywhere leaves a database that opens:

1. add a new key (or salt) IN FRONT of the key source: old and new both decrypt from now on;
2. re-encrypt the database, its backup generation, every access log file and every face thumbnail under the
   new key (each file replaced atomically, under that file's write lock), and remove the access log's index
   (a cache: rebuilt under the new key when a page needs it, so nothing stays readable with the old key);
3. drop the old keys from the key source.

Until step 3 completes the source lists both keys, so every file opens whichever state it is in. Running the
command again after an interruption simply adds one more key and finishes the job. A running daemon follows
along because its key ring re-reads the source under each write lock.
"""

from __future__ import annotations

import logging

from .accesslog import AccessLog
from .eventfaces import EventFaces
from .eventindex import INDEX_SUFFIX
from .errors import StoreError
from .keys import KeyRing
from .store import Store

log = logging.getLogger(__name__)


def rotate(store: Store, access_log: AccessLog, faces: EventFaces | None = None) -> int:
    """Rotate the key of ``store``, ``access_log`` and ``faces`` (which share one key ring); returns how many
    old keys were dropped."""
    ring: KeyRing = store.keyring
    source = ring.source
    if source is None:
        raise StoreError("this key ring has no key source to rotate")
    if not source.rotatable:
        source.write_entries([])  # raises the source's own explanation
    with store._mutex, store._lock:  # one rotation at a time
        entries = source.read_entries()
        old = len(entries)
        source.write_entries([source.new_entry()] + entries)
        ring.refresh()
        if access_log.keyring is not ring:
            access_log.keyring.refresh()
        log.info("key rotation: new key added; re-encrypting")
        store.reencrypt()
        kept = access_log.reencrypt()
        if kept:
            log.warning("key rotation: %d damaged access-log lines were kept as they were", kept)
        access_log.path.with_name(access_log.path.name + INDEX_SUFFIX).unlink(missing_ok=True)
        if faces is not None:
            kept = faces.reencrypt()
            if kept:
                log.warning("key rotation: %d damaged face thumbnails were kept as they were", kept)
        newest = source.read_entries()[0]
        source.write_entries([newest])
        ring.refresh()
        if access_log.keyring is not ring:
            access_log.keyring.refresh()
    log.info("key rotation finished; %d old key(s) removed", old)
    return old
