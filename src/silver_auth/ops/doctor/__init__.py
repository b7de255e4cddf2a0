"""`silver-auth doctor`: every line of the hardening guide, checked where it can be seen on this
deployment (settings, files, sockets, the live edge, the database, Authentik), and otherwise named as
the code's or the operator's, with its runbook. One result per line, in the guide's order."""

from __future__ import annotations

from silver_auth.ops.doctor.catalogue import GUIDE
from silver_auth.ops.doctor.checks import AREAS, area_check, area_lines
from silver_auth.ops.doctor.context import Doctor, DoctorOptions, one_line
from silver_auth.ops.doctor.report import DoctorReport, Finding, Scrubber, failed, in_development
from silver_auth.settings import Settings

__all__ = ["DoctorOptions", "DoctorReport", "Finding", "run_doctor"]


async def run_doctor(settings: Settings, options: DoctorOptions | None = None) -> DoctorReport:
    """Run every check; a check that breaks fails its own lines with the reason, never the run."""
    doctor = Doctor(settings, options or DoctorOptions())
    found: dict[str, Finding] = {}
    try:
        for area in AREAS:
            lines = area_lines(area)
            try:
                findings = await area_check(area)(doctor)
            except Exception as exc:  # a bug or an unforeseen failure: the lines say so, the rest still run
                findings = [
                    failed(line, "the check itself", f"could not run: {one_line(exc)}") for line in lines
                ]
            for finding in findings:
                found[finding.line] = finding
    finally:
        await doctor.close()
    scrub = Scrubber(settings)
    ordered = []
    for line in GUIDE:
        finding = found.get(line.id) or failed(line.id, "the check itself", "no check answered for this line")
        ordered.append(scrub.finding(finding if settings.is_production else in_development(finding)))
    return DoctorReport(settings.env, ordered)
