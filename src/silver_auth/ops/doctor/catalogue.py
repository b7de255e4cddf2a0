"""The hardening guide's lines (docs/hardening-guide.md, the product's source document), word for word:
`doctor` reports on every one of them, in this order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuideLine:
    id: str
    section: str
    text: str


GUIDE: tuple[GuideLine, ...] = (
    # Edge and transport
    GuideLine("G1", "Edge and transport", "Serve `accounts.seqn.in` and `auth.seqn.in` over HTTPS only."),
    GuideLine(
        "G2", "Edge and transport", "Keep HSTS enabled with `includeSubDomains` once both domains are stable."
    ),
    GuideLine(
        "G3",
        "Edge and transport",
        "Keep `X-Content-Type-Options: nosniff` and `Referrer-Policy: strict-origin-when-cross-origin`.",
    ),
    GuideLine(
        "G4", "Edge and transport", "Expose Silver Auth API only through Caddy or the approved reverse proxy."
    ),
    GuideLine(
        "G5", "Edge and transport", "Keep direct API ports bound to localhost or internal Docker networks."
    ),
    # Authentik
    GuideLine("G6", "Authentik", "Require MFA for platform admins."),
    GuideLine("G7", "Authentik", "Keep platform admin access gated through `SEQN-A`."),
    GuideLine("G8", "Authentik", "Use least-privilege Authentik API tokens for provisioning."),
    GuideLine("G9", "Authentik", "Rotate Authentik API tokens on exposure or regular cadence."),
    GuideLine("G10", "Authentik", "Keep Authentik provider/client secrets out of browser-visible config."),
    # Sessions and cookies
    GuideLine("G11", "Sessions and cookies", "Keep `SESSION_COOKIE_SECURE=true` in production."),
    GuideLine(
        "G12",
        "Sessions and cookies",
        "Keep `SESSION_COOKIE_SAMESITE=Lax` unless a specific cross-site flow requires a reviewed change.",
    ),
    GuideLine("G13", "Sessions and cookies", "Use at least 32 random characters for `SESSION_SECRET`."),
    GuideLine("G14", "Sessions and cookies", "Treat session-secret rotation as a forced sign-out event."),
    GuideLine(
        "G15", "Sessions and cookies", "Prefer short operational shells over copying cookies or tokens."
    ),
    # Project and webhook secrets
    GuideLine("G16", "Project and webhook secrets", "Display `sk_live_` and `whsec_` values only once."),
    GuideLine("G17", "Project and webhook secrets", "Store only hashes or sealed secrets server-side."),
    GuideLine(
        "G18",
        "Project and webhook secrets",
        "Never return project secret keys, webhook secrets, Authentik API tokens, or OIDC client secrets "
        "from public APIs.",
    ),
    GuideLine(
        "G19",
        "Project and webhook secrets",
        "Rotate secrets after exposure, employee access changes, or environment moves.",
    ),
    # Database and backups
    GuideLine("G20", "Database and backups", "Keep Postgres ports private to Docker networks."),
    GuideLine(
        "G21",
        "Database and backups",
        "Use strong, unique `AUTHENTIK_PG_PASS` and `SILVER_POSTGRES_PASSWORD` values.",
    ),
    GuideLine("G22", "Database and backups", "Run local backups and encrypted offsite backups."),
    GuideLine("G23", "Database and backups", "Keep `env.backup` permission-restricted."),
    GuideLine("G24", "Database and backups", "Verify restore with drills, not only backup creation."),
    # Admin and support
    GuideLine("G25", "Admin and support", "Require admin role for org mutations."),
    GuideLine("G26", "Admin and support", "Require `SEQN-A` only for platform Authentik proxy operations."),
    GuideLine(
        "G27",
        "Admin and support",
        "Use audit logs for project, user, role, subscription, webhook, and secret-rotation actions.",
    ),
    GuideLine(
        "G28", "Admin and support", "Avoid raw secrets in support tools, screenshots, and alert payloads."
    ),
    GuideLine(
        "G29", "Admin and support", "Revoke sessions for lost devices, offboarding, or suspicious access."
    ),
    # Webhook safety
    GuideLine("G30", "Webhook safety", "Require HTTPS endpoint URLs for production receivers."),
    GuideLine("G31", "Webhook safety", "Sign all webhook payloads."),
    GuideLine("G32", "Webhook safety", "Ask receivers to verify timestamp and HMAC."),
    GuideLine("G33", "Webhook safety", "Use idempotency on receivers because retries can happen."),
    GuideLine("G34", "Webhook safety", "Monitor delivery failure trends and retry backlog."),
    # Rate limits and abuse
    GuideLine("G35", "Rate limits and abuse", "Keep the app limiter enabled."),
    GuideLine("G36", "Rate limits and abuse", "Use edge/proxy rules for route-specific limits."),
    GuideLine("G37", "Rate limits and abuse", "Alert on sustained `429`, not isolated bursts."),
    GuideLine(
        "G38", "Rate limits and abuse", "Rotate exposed secrets when abuse follows a single key prefix."
    ),
    GuideLine(
        "G39", "Rate limits and abuse", "Block hostile sources at the edge before changing global app limits."
    ),
    # Launch checklist
    GuideLine(
        "L1",
        "Launch checklist",
        "Public health, config, client-config, backend-key, and console-boundary checks are monitored.",
    ),
    GuideLine("L2", "Launch checklist", "Non-email alerts are routed to an attended channel."),
    GuideLine("L3", "Launch checklist", "Local backup and offsite encrypted backup schedules are active."),
    GuideLine("L4", "Launch checklist", "A restore drill has been completed."),
    GuideLine("L5", "Launch checklist", "Admin MFA is enabled."),
    GuideLine("L6", "Launch checklist", "`SEQN-A` membership is limited to platform admins."),
    GuideLine("L7", "Launch checklist", "Public package names are Free, Pro, and Scale."),
    GuideLine(
        "L8", "Launch checklist", "Email and payment flows are still documented as excluded from the MVP."
    ),
)
LINES: dict[str, GuideLine] = {line.id: line for line in GUIDE}
