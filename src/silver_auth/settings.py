"""Every setting of the service, typed, in one place: the only module that reads the environment."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SameSite = Literal["Lax", "Strict", "None"]
DEV_SECRETS_FILE = "secrets.json"
DEVELOPMENT_SIGN_UP_IP_MAX = 500


SEALING_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
ALERT_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


class Settings(BaseSettings):
    """Service settings read from the environment (and `.env` when present)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    env: Literal["development", "production"] = Field("development", alias="SILVER_ENV")
    data_dir: Path = Field(Path(".silver"), alias="SILVER_DATA_DIR")
    identity: Literal["builtin", "authentik"] = Field("builtin", alias="SILVER_IDENTITY")

    session_secret: SecretStr | None = Field(None, alias="SESSION_SECRET")
    session_cookie_secure: bool | None = Field(None, alias="SESSION_COOKIE_SECURE")
    session_cookie_samesite: SameSite = Field("Lax", alias="SESSION_COOKIE_SAMESITE")
    samesite_override: str | None = Field(
        None,
        alias="SESSION_COOKIE_SAMESITE_OVERRIDE",
        description="G12: the reviewed reason (ticket, flow) for a SameSite value other than Lax.",
    )
    session_idle_minutes: int = Field(60 * 24, alias="SESSION_IDLE_MINUTES", gt=0)
    session_absolute_hours: int = Field(24 * 14, alias="SESSION_ABSOLUTE_HOURS", gt=0)
    session_cookie_name: str = Field("silver_session", alias="SESSION_COOKIE_NAME")
    # Who may create a console account at /console/sign-up: anyone, only with an invitation, or nobody
    # (accounts then come from `silver-auth account create`). Unset: open in development, invite-only
    # in production.
    console_sign_up: Literal["open", "invite-only", "closed"] | None = Field(
        None, alias="SILVER_CONSOLE_SIGN_UP"
    )

    # Console MFA: the pending second-factor step after a correct password, and the failure
    # throttle for TOTP and recovery codes, counted per account and per IP across every worker.
    console_mfa_pending_minutes: int = Field(5, alias="CONSOLE_MFA_PENDING_MINUTES", gt=0, le=60)
    console_mfa_max_failures: int = Field(5, alias="CONSOLE_MFA_MAX_FAILURES", gt=0)
    console_mfa_ip_max_failures: int = Field(20, alias="CONSOLE_MFA_IP_MAX_FAILURES", gt=0)
    console_mfa_failure_window_minutes: int = Field(15, alias="CONSOLE_MFA_FAILURE_WINDOW_MINUTES", gt=0)
    # Console password sign-in failures, in the same window: per email from one IP (the
    # hard limit: guessing from elsewhere cannot lock the owner out), per IP, per email across IPs.
    console_sign_in_max_failures: int = Field(10, alias="CONSOLE_SIGN_IN_MAX_FAILURES", gt=0)
    console_sign_in_ip_max_failures: int = Field(50, alias="CONSOLE_SIGN_IN_IP_MAX_FAILURES", gt=0)
    console_sign_in_email_max_failures: int = Field(100, alias="CONSOLE_SIGN_IN_EMAIL_MAX_FAILURES", gt=0)
    # Hosted end-user sign-up: attempts per client IP and per project environment.
    end_user_sign_up_ip_max: int = Field(10, alias="SILVER_END_USER_SIGN_UP_IP_MAX", gt=0)
    """Production's default; development's is DEVELOPMENT_SIGN_UP_IP_MAX (one developer signs up a lot)."""
    end_user_sign_up_project_max: int = Field(200, alias="SILVER_END_USER_SIGN_UP_PROJECT_MAX", gt=0)
    end_user_sign_up_window_minutes: int = Field(60, alias="SILVER_END_USER_SIGN_UP_WINDOW_MINUTES", gt=0)
    # End-user sign-in failures: per email from one IP, per IP, per email; second factors and
    # re-authentication: per user and per IP; all in one window.
    end_user_sign_in_max_failures: int = Field(10, alias="SILVER_END_USER_SIGN_IN_MAX_FAILURES", gt=0)
    end_user_sign_in_ip_max_failures: int = Field(50, alias="SILVER_END_USER_SIGN_IN_IP_MAX_FAILURES", gt=0)
    end_user_sign_in_email_max_failures: int = Field(
        100, alias="SILVER_END_USER_SIGN_IN_EMAIL_MAX_FAILURES", gt=0
    )
    end_user_mfa_max_failures: int = Field(5, alias="SILVER_END_USER_MFA_MAX_FAILURES", gt=0)
    end_user_mfa_ip_max_failures: int = Field(30, alias="SILVER_END_USER_MFA_IP_MAX_FAILURES", gt=0)
    end_user_failure_window_minutes: int = Field(15, alias="SILVER_END_USER_FAILURE_WINDOW_MINUTES", gt=0)

    database_url: SecretStr | None = Field(None, alias="DATABASE_URL")
    postgres_host: str | None = Field(None, alias="SILVER_POSTGRES_HOST")
    postgres_port: int = Field(5432, alias="SILVER_POSTGRES_PORT")
    postgres_db: str = Field("silver", alias="SILVER_POSTGRES_DB")
    postgres_user: str = Field("silver", alias="SILVER_POSTGRES_USER")
    postgres_password: SecretStr | None = Field(None, alias="SILVER_POSTGRES_PASSWORD")
    authentik_pg_pass: SecretStr | None = Field(
        None, alias="AUTHENTIK_PG_PASS", description="Checked for strength and uniqueness (G21); never used."
    )
    db_pool_size: int = Field(10, alias="SILVER_DB_POOL_SIZE", gt=0)
    db_ping_idle_seconds: float = Field(
        10.0,
        alias="SILVER_DB_PING_IDLE_SECONDS",
        ge=0,
        le=3600,
        description="Postgres: a pooled connection idle this long is checked before use (0: always).",
    )
    password_hash_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        alias="SILVER_PASSWORD_HASH_THREADS",
        gt=0,
        description="Password hashes and verifications run at once per worker, each in a thread of its own.",
    )

    key_pepper: SecretStr | None = Field(None, alias="SILVER_KEY_PEPPER")
    sealing_keys: SecretStr | None = Field(
        None,
        alias="SILVER_SEALING_KEYS",
        description="Comma-separated `kid:base64(32 bytes)`; the first seals, all unseal.",
    )
    key_cache_ttl_seconds: float = Field(5.0, alias="SILVER_KEY_CACHE_TTL_SECONDS", ge=0, le=60)
    key_last_used_flush_seconds: float = Field(
        5.0,
        alias="SILVER_KEY_LAST_USED_FLUSH_SECONDS",
        ge=0,
        le=300,
        description="How often keys' last-used times are written, in one transaction; 0 writes each on the "
        "cache fill that notes it.",
    )

    # Unset: in development, the bind address (http://{bind_host}:{bind_port}); in production the
    # production guard refuses to start.
    accounts_url: str = Field("", alias="SILVER_ACCOUNTS_URL")
    auth_url: str = Field("", alias="SILVER_AUTH_URL")
    bind_host: str = Field("127.0.0.1", validation_alias=AliasChoices("SILVER_BIND_HOST", "SILVER_HOST"))
    bind_port: int = Field(8000, alias="SILVER_BIND_PORT", gt=0, lt=65536)
    workers: int = Field(1, alias="SILVER_WORKERS", gt=0)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"], alias="SILVER_TRUSTED_PROXIES"
    )
    max_body_bytes: int = Field(64 * 1024, alias="SILVER_MAX_BODY_BYTES", gt=0)
    log_level: str = Field("INFO", alias="SILVER_LOG_LEVEL")
    # --- Request logs and metrics ---
    log_format_setting: Literal["json", "console"] | None = Field(
        None,
        alias="SILVER_LOG_FORMAT",
        description="json: one JSON object a line; console: readable lines. Unset: json in production.",
    )
    access_log: bool = Field(True, alias="SILVER_ACCESS_LOG", description="One `request` line per request.")
    metrics_host: str = Field("127.0.0.1", alias="SILVER_METRICS_HOST")
    metrics_port: int = Field(
        9464,
        alias="SILVER_METRICS_PORT",
        ge=0,
        lt=65536,
        description="The Prometheus listener's port, apart from the API's; 0 (or empty) turns it off.",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        alias="PROMETHEUS_MULTIPROC_DIR",
        description="prometheus-client's multiprocess directory; `silver-auth serve` sets it for N workers.",
    )
    # --- end request logs and metrics ---

    # End-users of customer projects: hosted pages, their sessions and session JWTs.
    signing_algorithm: Literal["EdDSA", "ES256"] = Field("EdDSA", alias="SILVER_SIGNING_ALGORITHM")
    session_jwt_seconds: int = Field(60, alias="SILVER_SESSION_JWT_SECONDS", ge=10, le=3600)
    access_token_seconds: int = Field(
        300,
        alias="SILVER_ACCESS_TOKEN_SECONDS",
        ge=60,
        le=3600,
        description="Lifetime of the OpenID Provider's access and ID tokens: what an offline verifier may "
        "go on accepting after the session ends (userinfo and introspection refuse at once).",
    )
    end_user_session_hours: int = Field(24 * 7, alias="SILVER_END_USER_SESSION_HOURS", gt=0)
    end_user_code_seconds: int = Field(60, alias="SILVER_END_USER_CODE_SECONDS", ge=10, le=600)
    end_user_cookie_name: str = Field("silver_user_session", alias="SILVER_END_USER_COOKIE_NAME")
    # --- Webhooks (G30-G34) ---
    webhook_worker: Literal["in-process", "external"] = Field(
        "in-process",
        alias="SILVER_WEBHOOK_WORKER",
        description="in-process: the API delivers webhooks itself; external: `silver-auth worker` does.",
    )
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        alias="SILVER_WEBHOOK_RETRY_SCHEDULE",
        description="Seconds before each attempt (the first after the event): about 1.5 days in all.",
    )
    webhook_timeout_seconds: float = Field(15.0, alias="SILVER_WEBHOOK_TIMEOUT_SECONDS", gt=0, le=60)
    webhook_lease_seconds: float = Field(
        60.0,
        alias="SILVER_WEBHOOK_LEASE_SECONDS",
        gt=0,
        le=3600,
        description="How long a claimed delivery stays a worker's; a worker that dies frees it after this.",
    )
    webhook_response_cap_bytes: int = Field(4096, alias="SILVER_WEBHOOK_RESPONSE_CAP_BYTES", ge=0, le=65536)
    webhook_endpoint_concurrency: int = Field(
        1,
        alias="SILVER_WEBHOOK_ENDPOINT_CONCURRENCY",
        gt=0,
        le=64,
        description="Deliveries in flight per endpoint and worker; 1 keeps each endpoint's events in order.",
    )
    webhook_worker_concurrency: int = Field(64, alias="SILVER_WEBHOOK_WORKER_CONCURRENCY", gt=0, le=1024)
    webhook_secret_overlap_hours: float = Field(
        24.0, alias="SILVER_WEBHOOK_SECRET_OVERLAP_HOURS", ge=0, le=168
    )
    webhook_disable_after_hours: float = Field(120.0, alias="SILVER_WEBHOOK_DISABLE_AFTER_HOURS", gt=0)
    webhook_backlog_alert_count: int = Field(1000, alias="SILVER_WEBHOOK_BACKLOG_ALERT_COUNT", gt=0)
    webhook_backlog_alert_minutes: float = Field(15.0, alias="SILVER_WEBHOOK_BACKLOG_ALERT_MINUTES", gt=0)
    webhook_failure_alert_rate: float = Field(0.5, alias="SILVER_WEBHOOK_FAILURE_ALERT_RATE", gt=0, le=1)
    webhook_failure_alert_min_attempts: int = Field(
        20, alias="SILVER_WEBHOOK_FAILURE_ALERT_MIN_ATTEMPTS", gt=0
    )
    # --- Rate limits (G35-G38): the app limiter, always on; every request limit is in throttle.policies ---
    rate_limit_enabled: bool = Field(
        True,
        alias="SILVER_RATE_LIMIT_ENABLED",
        description="G35: production refuses to start with it off; development may switch it off.",
    )
    redis_url: SecretStr | None = Field(
        None,
        alias="SILVER_REDIS_URL",
        description="redis://host:port/db: one limit across every replica. Unset: in-process memory.",
    )
    redis_key_prefix: str = Field(
        "silver", alias="SILVER_REDIS_KEY_PREFIX", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )
    redis_timeout_seconds: float = Field(0.25, alias="SILVER_REDIS_TIMEOUT_SECONDS", gt=0, le=5)
    rate_limit_fallback_retry_seconds: float = Field(
        5.0,
        alias="SILVER_RATE_LIMIT_FALLBACK_RETRY_SECONDS",
        gt=0,
        le=300,
        description="With Redis unreachable, limits count per process; Redis is tried again after this.",
    )
    rate_limit_client_per_minute: int = Field(300, alias="SILVER_RATE_LIMIT_CLIENT_PER_MINUTE", gt=0)
    """Per publishable key and client IP (`/v1/client-config`, the client API)."""
    rate_limit_console_per_minute: int = Field(600, alias="SILVER_RATE_LIMIT_CONSOLE_PER_MINUTE", gt=0)
    """Per console session."""
    rate_limit_anonymous_per_minute: int = Field(300, alias="SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE", gt=0)
    """Per client IP, for calls without a valid key or session (hosted pages, health, JWKS…)."""
    rate_limit_sign_in_per_minute: int = Field(30, alias="SILVER_RATE_LIMIT_SIGN_IN_PER_MINUTE", gt=0)
    rate_limit_sign_up_per_minute: int = Field(10, alias="SILVER_RATE_LIMIT_SIGN_UP_PER_MINUTE", gt=0)
    rate_limit_mfa_per_minute: int = Field(20, alias="SILVER_RATE_LIMIT_MFA_PER_MINUTE", gt=0)
    rate_limit_code_exchange_per_minute: int = Field(
        60, alias="SILVER_RATE_LIMIT_CODE_EXCHANGE_PER_MINUTE", gt=0
    )
    rate_limit_refresh_per_minute: int = Field(120, alias="SILVER_RATE_LIMIT_REFRESH_PER_MINUTE", gt=0)
    rate_limit_invitation_per_minute: int = Field(20, alias="SILVER_RATE_LIMIT_INVITATION_PER_MINUTE", gt=0)
    # G37: a sustained share of 429s per key prefix or source IP raises one alert; bursts do not.
    rate_limit_alert_minutes: int = Field(5, alias="SILVER_RATE_LIMIT_ALERT_MINUTES", gt=0, le=60)
    """Every minute of this many must be over the share for the alert to be raised."""
    rate_limit_alert_share: float = Field(0.5, alias="SILVER_RATE_LIMIT_ALERT_SHARE", gt=0, lt=1)
    rate_limit_alert_min_requests: int = Field(10, alias="SILVER_RATE_LIMIT_ALERT_MIN_REQUESTS", gt=0)
    """Requests a minute needs before its share of 429s counts."""
    # --- Alerts (L2) ---
    alert_urls: SecretStr | None = Field(
        None,
        alias="SILVER_ALERT_URLS",
        description="L2: apprise URLs of the attended channels (Slack, Mattermost, ntfy, Matrix, PagerDuty, "
        "json://…), separated by spaces or commas; secret, since most carry a token.",
    )
    alert_dedupe_minutes: float = Field(60.0, alias="SILVER_ALERT_DEDUPE_MINUTES", ge=0, le=7 * 24 * 60)
    alert_timeout_seconds: float = Field(10.0, alias="SILVER_ALERT_TIMEOUT_SECONDS", gt=0, le=120)
    # --- end Alerts ---
    # --- Operations: backups, restore drills, the launch monitor, doctor (G22-G24, L1, L3, L4) ---
    backup_dir: Path | None = Field(
        None,
        alias="SILVER_BACKUP_DIR",
        description="Local backup copies; default `$SILVER_DATA_DIR/backups`.",
    )
    backup_keep_local: int = Field(7, alias="SILVER_BACKUP_KEEP_LOCAL", gt=0, le=1000)
    """Local copies kept; older ones are deleted after each successful backup."""
    backup_env_file: Path | None = Field(
        None,
        alias="SILVER_BACKUP_ENV_FILE",
        description="G23: the offsite credentials (restic repository and password, or the age recipient), "
        "mode 0600; `$SILVER_DATA_DIR/env.backup` when unset.",
    )
    backup_interval_hours: float = Field(24.0, alias="SILVER_BACKUP_INTERVAL_HOURS", ge=0, le=24 * 7)
    """How often `silver-auth worker` makes a backup; 0 turns the schedule off (L3)."""
    backup_max_age_hours: float = Field(26.0, alias="SILVER_BACKUP_MAX_AGE_HOURS", gt=0)
    """Doctor fails G22/L3, and the worker alerts, when the newest good backup is older than this."""
    backup_pg_bin_dir: Path | None = Field(
        None,
        alias="SILVER_BACKUP_PG_BIN_DIR",
        description="Where `pg_dump` and `pg_restore` of the server's major version are; unset: PATH.",
    )
    restore_drill_max_age_days: float = Field(30.0, alias="SILVER_RESTORE_DRILL_MAX_AGE_DAYS", gt=0)
    """Doctor fails G24/L4 when no successful restore drill is newer than this."""
    restore_drill_database_prefix: str = Field(
        "silver_drill_", alias="SILVER_RESTORE_DRILL_DATABASE_PREFIX", pattern=r"^[a-z_][a-z0-9_]{0,39}$"
    )
    """Postgres: the drill restores into a new database of this name plus random letters, then drops it."""
    restore_drill_canary_key_file: Path | None = Field(None, alias="SILVER_RESTORE_DRILL_CANARY_KEY_FILE")
    """A file holding the canary `sk_…` key the drill verifies on the restored copy (unset: the monitor's)."""
    restore_drill_canary_account: str | None = Field(None, alias="SILVER_RESTORE_DRILL_CANARY_ACCOUNT")
    """The email of the canary console account the drill signs in with on the restored copy."""
    restore_drill_canary_password_file: Path | None = Field(
        None, alias="SILVER_RESTORE_DRILL_CANARY_PASSWORD_FILE"
    )
    """A file holding the canary account's password; read, never printed."""
    restore_drill_startup_seconds: float = Field(
        60.0, alias="SILVER_RESTORE_DRILL_STARTUP_SECONDS", gt=0, le=600
    )
    """How long the drill waits for the app it starts on the restored copy to answer /health."""
    monitor_publishable_key: str | None = Field(None, alias="SILVER_MONITOR_PUBLISHABLE_KEY")
    """The `pk_…` key `silver-auth monitor` reads client-config with (public by design)."""
    monitor_secret_key_file: Path | None = Field(None, alias="SILVER_MONITOR_SECRET_KEY_FILE")
    """A file holding the canary `sk_…` key of the backend-key check; read, never printed."""
    monitor_timeout_seconds: float = Field(10.0, alias="SILVER_MONITOR_TIMEOUT_SECONDS", gt=0, le=120)
    monitor_max_age_minutes: float = Field(15.0, alias="SILVER_MONITOR_MAX_AGE_MINUTES", gt=0)
    """Doctor fails L1 when no monitor run is newer than this."""
    doctor_alert_delivery_max_age_days: float = Field(
        30.0, alias="SILVER_DOCTOR_ALERT_DELIVERY_MAX_AGE_DAYS", gt=0
    )
    """Doctor warns on L2 when no alert has reached a channel for this long (`silver-auth alerts test`)."""
    doctor_max_platform_admins: int = Field(5, alias="SILVER_DOCTOR_MAX_PLATFORM_ADMINS", gt=0)
    """Doctor warns on G7/L6, asking for a review, when SEQN-A has more members than this."""
    # --- end Operations ---
    # --- Authentik (SILVER_IDENTITY=authentik): provisioning API and console sign-in (G8, G10) ---
    authentik_url: str | None = Field(
        None, alias="SILVER_AUTHENTIK_URL", description="Authentik's base URL; the API is below /api/v3."
    )
    authentik_token: SecretStr | None = Field(
        None, alias="SILVER_AUTHENTIK_TOKEN", description="G8: the least-privilege provisioning API token."
    )
    authentik_verify_tls: bool = Field(True, alias="SILVER_AUTHENTIK_VERIFY_TLS")
    authentik_timeout_seconds: float = Field(10.0, alias="SILVER_AUTHENTIK_TIMEOUT_SECONDS", gt=0, le=120)
    authentik_authorization_flow: str = Field(
        "default-provider-authorization-implicit-consent", alias="SILVER_AUTHENTIK_AUTHORIZATION_FLOW"
    )
    authentik_invalidation_flow: str = Field(
        "default-provider-invalidation-flow", alias="SILVER_AUTHENTIK_INVALIDATION_FLOW"
    )
    console_oidc_issuer: str | None = Field(None, alias="SILVER_CONSOLE_OIDC_ISSUER")
    console_oidc_client_id: str | None = Field(None, alias="SILVER_CONSOLE_OIDC_CLIENT_ID")
    console_oidc_client_secret: SecretStr | None = Field(
        None, alias="SILVER_CONSOLE_OIDC_CLIENT_SECRET", description="G10: server-side only, never sent out."
    )
    # --- end Authentik ---
    # --- Edge: the Caddy in front of the API (G36, G39) ---
    edge_blocklist: Path = Field(
        Path("/etc/caddy/caddy/blocklist.caddy"),
        alias="SILVER_EDGE_BLOCKLIST",
        description="G39: the Caddyfile snippet of blocked sources that `silver-auth edge block` rewrites; "
        "the one the Caddyfile imports (deploy/ installed as /etc/caddy/).",
    )
    edge_reload: str = Field(
        "systemctl reload caddy",
        alias="SILVER_EDGE_RELOAD",
        description="The command `silver-auth edge block --reload` runs so Caddy reads the list again.",
    )
    # --- end Edge ---

    @field_validator("session_cookie_samesite", mode="before")
    @classmethod
    def _samesite_case(cls, value: Any) -> Any:
        return value.strip().capitalize() if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_shape(cls, value: list[float]) -> list[float]:
        if not value or any(step < 0 for step in value):
            raise ValueError("a comma-separated list of at least one delay in seconds, none negative")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> Settings:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("SILVER_WEBHOOK_LEASE_SECONDS must exceed SILVER_WEBHOOK_TIMEOUT_SECONDS")
        return self

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port_is_off(cls, value: Any) -> Any:
        return 0 if isinstance(value, str) and not value.strip() else value

    @field_validator("prometheus_multiproc_dir", mode="before")
    @classmethod
    def _empty_dir_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _development_defaults(self) -> Settings:
        """Public URLs follow the bind address: a developer who only moves the port gets client-config,
        the hosted pages and the JWT issuer on that port too, not on :8000 where nothing listens. And
        one developer testing sign-up from one IP is not blocked for an hour after ten tries."""
        if not self.is_production:
            host = self.bind_host if self.bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
            bound = f"http://{f'[{host}]' if ':' in host else host}:{self.bind_port}"
            for name in ("accounts_url", "auth_url"):
                if not getattr(self, name):
                    # The model is frozen for everyone else; this runs once, while it is being built.
                    self.__dict__[name] = bound
            if "end_user_sign_up_ip_max" not in self.model_fields_set:
                self.__dict__["end_user_sign_up_ip_max"] = DEVELOPMENT_SIGN_UP_IP_MAX
        return self

    @property
    def limits_redis_uri(self) -> str | None:
        """SILVER_REDIS_URL in the form the `limits` library's async storage takes."""
        if self.redis_url is None:
            return None
        url = self.redis_url.get_secret_value()
        for plain in ("redis://", "rediss://", "unix://"):
            if url.startswith(plain):
                return "async+" + url
        return url

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def log_format(self) -> Literal["json", "console"]:
        """SILVER_LOG_FORMAT, else JSON in production (for log shippers) and readable lines in development."""
        if self.log_format_setting is not None:
            return self.log_format_setting
        return "json" if self.is_production else "console"

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port != 0

    @property
    def cookie_secure(self) -> bool:
        """G11: defaults to true in production, false for the plain-http embedded default."""
        if self.session_cookie_secure is None:
            return self.is_production
        return self.session_cookie_secure

    @property
    def console_cookie_secure(self) -> bool:
        """`Secure` on the console's cookies (the accounts host)."""
        return self._cookie_secure_on(self.accounts_url)

    @property
    def console_sign_up_mode(self) -> Literal["open", "invite-only", "closed"]:
        if self.console_sign_up is not None:
            return self.console_sign_up
        return "invite-only" if self.env == "production" else "open"

    @property
    def end_user_cookie_secure(self) -> bool:
        """`Secure` on the hosted pages' cookies (the auth host)."""
        return self._cookie_secure_on(self.auth_url)

    def _cookie_secure_on(self, public_url: str) -> bool:
        """G11: SESSION_COOKIE_SECURE when set; left unset, also in development when the host's public URL
        is https (a browser would otherwise send the cookie over plain http after a downgrade)."""
        if self.session_cookie_secure is None and public_url.startswith("https://"):
            return True
        return self.cookie_secure

    @property
    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: DATABASE_URL, else SILVER_POSTGRES_*, else SQLite in the data dir."""
        if self.database_url is not None:
            return normalize_database_url(self.database_url.get_secret_value())
        if self.postgres_host:
            password = self.postgres_password.get_secret_value() if self.postgres_password else ""
            auth = quote(self.postgres_user, safe="") + (":" + quote(password, safe="") if password else "")
            return f"postgresql+asyncpg://{auth}@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"
        return f"sqlite+aiosqlite:///{(self.data_dir / 'silver.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def database_password(self) -> str | None:
        """The password the service uses for its database, wherever it was configured."""
        if self.database_url is not None:
            return urlsplit(self.database_url.get_secret_value()).password
        return self.postgres_password.get_secret_value() if self.postgres_password else None

    @property
    def backup_directory(self) -> Path:
        """Where local backup copies go: SILVER_BACKUP_DIR, else `backups` in the data directory."""
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"

    @property
    def backup_env_path(self) -> Path:
        """The offsite credentials (G23): SILVER_BACKUP_ENV_FILE, else `env.backup` in the data directory."""
        return self.backup_env_file if self.backup_env_file is not None else self.data_dir / "env.backup"

    @property
    def drill_canary_key_path(self) -> Path | None:
        """The drill's canary key: SILVER_RESTORE_DRILL_CANARY_KEY_FILE, else the monitor's canary key."""
        return self.restore_drill_canary_key_file or self.monitor_secret_key_file

    def alert_channel_urls(self) -> list[str]:
        """SILVER_ALERT_URLS, one apprise URL each. A comma separates two URLs only when the next one
        starts (`scheme://`): apprise URLs carry commas of their own in their query (`?tags=a,b`)."""
        if self.alert_urls is None:
            return []
        parts = ALERT_URL_SEPARATOR.split(self.alert_urls.get_secret_value())
        return [url for url in (part.strip(",") for part in parts) if url]

    def secret(self, name: Literal["session_secret", "key_pepper"]) -> bytes:
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise RuntimeError(f"{name} is not configured")
        return value.get_secret_value().encode()

    def sealing_key_ring(self) -> list[tuple[str, bytes]]:
        """Parsed sealing keys, active key first."""
        if self.sealing_keys is None:
            return []
        ring = []
        for item in self.sealing_keys.get_secret_value().split(","):
            kid, _, encoded = item.strip().partition(":")
            if not SEALING_KID.fullmatch(kid):  # the kid is written into every sealed value, dot-separated
                raise ValueError("SILVER_SEALING_KEYS: a key id is 1-32 letters, digits, `_` or `-`")
            ring.append((kid, base64.b64decode(encoded)))
        return ring


def normalize_database_url(url: str) -> str:
    """Map plain `postgres://`/`sqlite://` URLs to the async drivers the service uses."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Generate the embedded default's secrets once, keep them 0600 in the data dir, reuse them after."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / DEV_SECRETS_FILE
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    generated = {
        "SESSION_SECRET": secrets.token_urlsafe(48),
        "SILVER_KEY_PEPPER": secrets.token_urlsafe(48),
        "SILVER_SEALING_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    # Written whole under a private name, then linked into place: processes starting together (a CLI
    # command beside `dev`) either win the link or read the winner's complete file, never a half one.
    fd, scratch = tempfile.mkstemp(dir=data_dir, prefix=".secrets-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(generated, handle)
        os.link(scratch, path)
    except FileExistsError:
        stored = json.loads(path.read_text())
        return stored
    finally:
        os.unlink(scratch)
    return generated


def environment_settings(**overrides: Any) -> Settings:
    """The settings as the environment gives them, development secrets not filled in: writes nothing."""
    return Settings(**overrides)


def load_settings(**overrides: Any) -> Settings:
    """Read settings; in development, fill missing secrets from (or into) the data dir."""
    settings = Settings(**overrides)
    if settings.is_production:
        return settings
    missing = {
        "SESSION_SECRET": settings.session_secret,
        "SILVER_KEY_PEPPER": settings.key_pepper,
        "SILVER_SEALING_KEYS": settings.sealing_keys,
    }
    if all(value is not None for value in missing.values()):
        return settings
    generated = _dev_secrets(settings.data_dir)
    fill = {
        field: SecretStr(generated[alias])
        for alias, field in (
            ("SESSION_SECRET", "session_secret"),
            ("SILVER_KEY_PEPPER", "key_pepper"),
            ("SILVER_SEALING_KEYS", "sealing_keys"),
        )
        if missing[alias] is None
    }
    return settings.model_copy(update=fill)
