"""The one failure of backups and restore drills: a reason an operator can act on, in one line."""

from __future__ import annotations

from silver_auth.core.errors import ProblemError


class BackupError(ProblemError):
    """A backup or a restore drill that cannot go on; the message never holds a secret."""

    status, slug, title = 500, "backup-failed", "The backup or restore drill failed"
