"""The owner-only check that `backup` and `doctor` apply to env.backup and the data directory (G23)."""

from __future__ import annotations

from pathlib import Path

import pytest

from silver_auth.ops.files import permission_problem


@pytest.mark.parametrize(("mode", "closed"), [(0o600, True), (0o400, True), (0o640, False), (0o604, False)])
def test_g23_env_backup_must_be_owner_only(tmp_path: Path, mode: int, closed: bool) -> None:
    env_backup = tmp_path / "env.backup"
    env_backup.write_text("RESTIC_PASSWORD=x\n")
    env_backup.chmod(mode)
    problem = permission_problem(env_backup)
    assert (problem is None) is closed
    if not closed:
        assert problem is not None and f"chmod 600 {env_backup}" in problem


def test_g23_data_directory_must_be_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    assert permission_problem(data, directory=True) is None
    data.chmod(0o750)
    assert "chmod 700" in (permission_problem(data, directory=True) or "")
    assert "is not a regular file" in (permission_problem(data) or "")
    assert "does not exist" in (permission_problem(tmp_path / "missing") or "")
