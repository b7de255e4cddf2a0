"""The lines doctor cannot observe on a running deployment. Some are the code's own behaviour, the same
in every deployment of this version, and pass as "enforced by the code", naming the test that proves
it (a test checks that each named test exists); the rest are the operator's, each with its runbook."""

from __future__ import annotations

from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, operator_step, passed

ENFORCED_BY_CODE: dict[str, tuple[str, str]] = {
    "G10": (
        "client secrets stay server-side",
        "tests/authentik/test_console_oidc.py::test_g10_public_config_never_carries_authentik_secrets",
    ),
    "G16": ("secrets shown once", "tests/keys/test_keys.py::test_g16_secret_key_shown_once"),
    "G18": ("no secret in public answers", "tests/test_public.py::test_g18_public_answers_carry_no_secret"),
    "G25": ("org mutations need admin", "tests/authz/test_matrix.py::test_role_route_matrix"),
    "G26": (
        "identity proxy operations need SEQN-A",
        "tests/admin/test_admin_matrix.py::test_g26_acceptance_mfa_without_seqn_a_cannot_do_identity_proxy_operations",
    ),
    "G27": (
        "audited actions, hash-chained (`silver-auth audit verify` walks the chain)",
        "tests/audit/test_chain.py::test_g27_edited_event_is_named",
    ),
    "G31": (
        "every delivery signed",
        "tests/webhooks/test_delivery.py::test_g31_test_event_is_signed_and_verifies_with_standardwebhooks_and_svix",
    ),
    "G34": (
        "delivery failures and backlog alert",
        "tests/webhooks/test_alerts.py::test_g34_backlog_over_the_threshold_raises_one_alert_and_clears",
    ),
    "G37": (
        "sustained 429s alert, bursts do not",
        "tests/ratelimit/test_sustained.py::test_g37_five_minutes_mostly_refused_raise_one_alert",
    ),
}
"""line -> (what the code does, the test that proves it)."""

OPERATOR_STEPS: dict[str, tuple[str, str, str]] = {
    "G4": (
        "only Caddy reaches the API",
        "g4-reverse-proxy",
        "doctor sees the API's own port (G5) and the edge (G1-G3), not every route to the API",
    ),
    "G9": ("Authentik token rotation", "g9-g19-token-and-secret-rotation", ""),
    "G14": (
        "session-secret rotation is a forced sign-out",
        "g14-session-secret-rotation",
        "the code signs everyone out when SESSION_SECRET changes "
        "(tests/accounts/test_console_sessions.py::test_g14_changing_session_secret_signs_everyone_out)",
    ),
    "G15": ("short operational shells", "g15-short-operational-shells", ""),
    "G19": ("secret rotation after exposure or access changes", "g9-g19-token-and-secret-rotation", ""),
    "G28": (
        "raw secrets kept out of support tools",
        "g28-secrets-out-of-support-tools",
        "the code redacts logs, errors and alert payloads (tests/admin/test_g28_canary.py)",
    ),
    "G29": ("session revocation on lost devices and offboarding", "g29-lost-device-and-offboarding", ""),
    "G32": (
        "receivers verify timestamp and HMAC",
        "g32-g33-webhook-receivers",
        "docs/webhooks.md has the receiver guide and examples",
    ),
    "G33": (
        "receivers are idempotent",
        "g32-g33-webhook-receivers",
        "docs/webhooks.md has the receiver guide and examples",
    ),
    "G36": ("route-specific limits at the edge", "g36-edge-rate-limits", ""),
    "G38": ("rotate a key whose prefix abuse follows", "g38-key-prefix-abuse", ""),
    "G39": ("block hostile sources at the edge", "g39-edge-blocklist", ""),
}
"""line -> (what the operator does, its runbook anchor in docs/runbooks.md, a note)."""

LINES = tuple(ENFORCED_BY_CODE) + tuple(OPERATOR_STEPS)


async def check(doctor: Doctor) -> list[Finding]:
    findings = [
        passed(line, f"enforced by the code: {what}", f"tested by {test}")
        for line, (what, test) in ENFORCED_BY_CODE.items()
    ]
    findings += [
        operator_step(line, what, anchor, note) for line, (what, anchor, note) in OPERATOR_STEPS.items()
    ]
    return findings
