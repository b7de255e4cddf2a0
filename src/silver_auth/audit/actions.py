"""Every audited action (G27): one name per kind of change, grouped by domain."""

from __future__ import annotations

import enum


class AuditAction(enum.StrEnum):
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_GROUP_ADDED = "account.group_added"
    ORG_CREATED = "org.created"
    ORG_UPDATED = "org.updated"
    ORG_DELETED = "org.deleted"
    MEMBER_ADDED = "member.added"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    INVITATION_CREATED = "invitation.created"
    INVITATION_ACCEPTED = "invitation.accepted"
    INVITATION_REVOKED = "invitation.revoked"
    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_DELETED = "project.deleted"
    PROJECT_BRANDING_UPDATED = "project.branding_updated"
    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    # Platform admins: plans, sessions, the identity backend (G6, G7, G26, G29)
    SUBSCRIPTION_CHANGED = "subscription.changed"
    # Housekeeping: events past their org's plan retention left the log (one platform event per purge)
    AUDIT_EVENTS_PURGED = "audit.events_purged"
    ADMIN_SESSIONS_REVOKED = "admin.sessions_revoked"
    IDENTITY_USER_DEACTIVATED = "identity.user_deactivated"
    IDENTITY_MFA_RESET = "identity.mfa_reset"
    # Console accounts: passwords, deactivation, groups, sessions and MFA (G29)
    ACCOUNT_PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - an event name
    ACCOUNT_REAUTH_FAILED = "account.reauth_failed"
    ACCOUNT_DEACTIVATED = "account.deactivated"
    ACCOUNT_MFA_RESET = "account.mfa_reset"
    ACCOUNT_SESSIONS_REVOKED = "account.sessions_revoked"
    ACCOUNT_SIGNED_IN = "account.signed_in"
    ACCOUNT_SIGNED_OUT = "account.signed_out"
    ACCOUNT_SESSION_REVOKED = "account.session_revoked"
    ACCOUNT_GROUP_REMOVED = "account.group_removed"
    MFA_ENROLLED = "mfa.enrolled"
    MFA_DISABLED = "mfa.disabled"
    MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
    MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used"
    MFA_FAILED = "mfa.failed"
    # End-users and signing keys
    END_USER_CREATED = "end_user.created"
    END_USER_UPDATED = "end_user.updated"
    END_USER_PASSWORD_CHANGED = "end_user.password_changed"  # noqa: S105 - an event name
    END_USER_BANNED = "end_user.banned"
    END_USER_UNBANNED = "end_user.unbanned"
    END_USER_DELETED = "end_user.deleted"
    END_USER_SESSIONS_REVOKED = "end_user.sessions_revoked"
    END_USER_SESSION_REVOKED = "end_user.session_revoked"
    END_USER_SIGN_IN_FAILED = "end_user.sign_in_failed"
    END_USER_MFA_FAILED = "end_user.mfa_failed"
    END_USER_MFA_ENABLED = "end_user.mfa_enabled"
    END_USER_MFA_DISABLED = "end_user.mfa_disabled"
    SIGNING_KEY_CREATED = "signing_key.created"
    SIGNING_KEY_ROTATED = "signing_key.rotated"
    # Authentik backend: provisioning and console sign-in (G8, G10, G27)
    PROJECT_IDENTITY_PROVISIONED = "project.identity_provisioned"
    PROJECT_IDENTITY_SECRET_ROTATED = "project.identity_secret_rotated"  # noqa: S105 - an action name
    ACCOUNT_GROUPS_SYNCED = "account.groups_synced"
    # Refused secrets: console sign-in and end-user re-authentication failures
    ACCOUNT_SIGN_IN_FAILED = "account.sign_in_failed"
    END_USER_REAUTH_FAILED = "end_user.reauth_failed"
    # Webhook endpoints and their secrets (G16, G27, G34)
    WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created"
    WEBHOOK_ENDPOINT_UPDATED = "webhook.endpoint_updated"
    WEBHOOK_ENDPOINT_DELETED = "webhook.endpoint_deleted"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # noqa: S105 - an action name
    WEBHOOK_SECRET_REVEAL_REFUSED = "webhook.secret_reveal_refused"  # noqa: S105 - an action name
    WEBHOOK_MESSAGES_REPLAYED = "webhook.messages_replayed"
    WEBHOOK_TEST_SENT = "webhook.test_sent"
