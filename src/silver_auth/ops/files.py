"""Whether a file or directory that holds secrets is closed to everyone but its owner (G23)."""

from __future__ import annotations

import stat
from pathlib import Path


def permission_problem(path: Path, *, directory: bool = False) -> str | None:
    """None when `path` exists and neither its group nor others may read, write or enter it; else one line
    naming what is wrong and the `chmod` that fixes it. Symlinks are followed: the target is what is read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or type(exc).__name__}"
    if directory != stat.S_ISDIR(mode):
        return f"{path} is not a {'directory' if directory else 'regular file'}"
    open_bits = stat.S_IMODE(mode) & 0o077
    if open_bits:
        wanted = "700" if directory else "600"
        return f"{path} is mode {stat.S_IMODE(mode):04o}, open to group or others: chmod {wanted} {path}"
    return None
