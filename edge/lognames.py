"""How people appear in the journal.

journald keeps the service's stderr on the SD card in plain text, readable without the key, next to an access log
that is encrypted for a reason: who came and went. So the journal names people by user id unless
``[logging] names = true``; the encrypted access log keeps the names.
"""

from __future__ import annotations

from typing import Any


def journal_name(cfg: Any, user_id: str | None, name: str | None = None) -> str:
    """``name`` when the configuration allows names in the journal, else ``user <id>`` (or ``-`` for nobody)."""
    if name and cfg is not None and cfg.logging.names:
        return name
    return f"user {user_id}" if user_id else "-"
