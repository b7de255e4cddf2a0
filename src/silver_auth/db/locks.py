"""Which statements write or lock, and whether a connection's transaction has sent one: a transaction
that has only read holds nothing, so it may end early (see session.release_idle) without a loss."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITING = "silver_auth.writing"
"""Connection info: the current transaction has written or locked (on SQLite: holds the write lock)."""
READ_ONLY = ("SELECT", "PRAGMA", "BEGIN DEFERRED")
"""Statements that neither write nor lock: a deferred BEGIN starts a read snapshot on SQLite."""
_LOCKING_READ = re.compile(r"\bFOR\s+(UPDATE|NO\s+KEY\s+UPDATE|SHARE|KEY\s+SHARE)\b|pg_(try_)?advisory", re.I)


def writes(statement: str, context: Any) -> bool:
    """Anything but a plain read: a write, DDL, SET, a locking read (FOR UPDATE, which SQLite's compiler
    drops from the text, or FOR SHARE) or an advisory lock."""
    if not statement.lstrip().upper().startswith(READ_ONLY):
        return True
    compiled = getattr(getattr(context, "compiled", None), "statement", None)
    return getattr(compiled, "_for_update_arg", None) is not None or bool(_LOCKING_READ.search(statement))


def _note(connection: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
    if not connection.info.get(WRITING) and writes(statement, context):
        connection.info[WRITING] = True


def _begun(connection: Any) -> None:
    connection.info[WRITING] = False


def track_writes(engine: Engine) -> None:
    """Postgres: note the first write or lock of each transaction (SQLite's engine notes its own, as it
    takes the write lock)."""
    event.listen(engine, "before_cursor_execute", _note)
    event.listen(engine, "begin", _begun)
