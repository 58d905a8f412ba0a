"""How the package connects: the same switches as the Swift processes (docs/failover.md).

``ORCASTRA_PREPARED_STATEMENTS=off`` keeps psycopg from preparing statements on the server (it does
after a statement's fifth run on a connection), which PgBouncer in transaction mode before 1.21
cannot carry from one transaction to the next. ``ORCASTRA_LISTEN_DATABASE_URL`` is where to LISTEN
when the database URL goes through such a pooler, which cannot keep a LISTEN.
"""

from __future__ import annotations

import os
from typing import Any


def connect_options() -> dict[str, Any]:
    """psycopg's keyword arguments for every connection of this package."""
    value = os.environ.get("ORCASTRA_PREPARED_STATEMENTS", "").strip().lower()
    if value in ("off", "false", "0", "no"):
        return {"prepare_threshold": None}
    return {}


def listen_conninfo(conninfo: str) -> str:
    """The connection string to LISTEN with: ``ORCASTRA_LISTEN_DATABASE_URL`` when set, else ``conninfo``."""
    return os.environ.get("ORCASTRA_LISTEN_DATABASE_URL") or conninfo
