"""`silver-auth monitor`: the launch checks (L1) against the live service, their runs recorded for
`doctor`, their failures and recoveries routed to the alert path (L2)."""

from silver_auth.ops.monitor.checks import (
    CHECK_NAMES,
    CheckResult,
    run_checks,
    secret_shaped_paths,
)
from silver_auth.ops.monitor.target import MonitorTarget, TargetError, interval_seconds
from silver_auth.ops.monitor.watch import ALERT_KIND, Monitor, MonitorReport, alert_subject, monitoring

__all__ = [
    "ALERT_KIND",
    "CHECK_NAMES",
    "CheckResult",
    "Monitor",
    "MonitorReport",
    "MonitorTarget",
    "TargetError",
    "alert_subject",
    "interval_seconds",
    "monitoring",
    "run_checks",
    "secret_shaped_paths",
]
