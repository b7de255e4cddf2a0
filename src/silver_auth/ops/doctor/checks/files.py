"""File permissions (G23): the offsite credentials and the data directory are their owner's alone."""

from __future__ import annotations

from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, failed, passed, warned
from silver_auth.ops.files import permission_problem

LINES = ("G23",)


async def check(doctor: Doctor) -> list[Finding]:
    settings = doctor.settings
    env_backup, data_dir = settings.backup_env_path, settings.data_dir
    check = f"{env_backup} 0600, {data_dir} 0700"
    problems = [
        problem
        for problem in (permission_problem(data_dir, directory=True), permission_problem(env_backup))
        if problem is not None
    ]
    missing = [problem for problem in problems if problem.endswith("does not exist")]
    wrong = [problem for problem in problems if problem not in missing]
    if wrong:
        return [failed("G23", check, "; ".join(wrong), "chmod as named; the files hold backup credentials")]
    if missing:
        return [
            warned(
                "G23",
                check,
                "; ".join(missing),
                "create env.backup 0600 with the offsite credentials (docs/operations.md, Backups)",
            )
        ]
    return [passed("G23", check, "owner-only")]
