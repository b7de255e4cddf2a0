"""Plan names (L7): the catalogue this code ships, and the plans the running API publishes in
`/v1/config` (another version may be running than the one doctor is), are exactly Free, Pro, Scale."""

from __future__ import annotations

from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, failed, passed
from silver_auth.plans.service import PLANS

LINES = ("L7",)
PUBLIC_NAMES = ["Free", "Pro", "Scale"]


async def check(doctor: Doctor) -> list[Finding]:
    check = "plan names are Free, Pro, Scale"
    fix = "run a released version: the public plans are Free, Pro and Scale"
    shipped = [plan.name for plan in PLANS.values()]
    if sorted(shipped) != sorted(PUBLIC_NAMES):
        return [failed("L7", check, f"this version's catalogue names {', '.join(shipped)}", fix)]
    where, config, why = await doctor.live_config()
    if config is None:
        return [passed("L7", check, f"this version's catalogue ({where} not read: {why})")]
    plans = config.get("plans")
    served = [plan.get("name") for plan in plans if isinstance(plan, dict)] if isinstance(plans, list) else []
    if sorted(str(name) for name in served) != sorted(PUBLIC_NAMES):
        shown = ", ".join(str(name) for name in served) or "none"
        return [failed("L7", check, f"{where} publishes {shown}", fix)]
    return [passed("L7", check, f"this version's catalogue and {where}")]
