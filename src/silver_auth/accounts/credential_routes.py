"""The signed-in account's own password and TOTP MFA (console, builtin identity)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import service
from silver_auth.accounts.guards import ACCOUNT, SSO_REQUIRED, ConsoleContext, builtin_identity_only
from silver_auth.accounts.schemas import (
    CodeInput,
    MfaDisable,
    MfaStatusPublic,
    OtherSessionsEnded,
    PasswordChange,
    PasswordInput,
    RecoveryCodes,
    TotpEnrolment,
)
from silver_auth.mfa import console as console_mfa
from silver_auth.mfa.factors import SecondFactorDeps
from silver_auth.settings import Settings
from silver_auth.throttle.service import Throttle
from silver_auth.web.openapi import THROTTLED, problem

SSO = problem(SSO_REQUIRED)
REAUTH = problem(f"the password is wrong (`reauthentication-failed`); or {SSO_REQUIRED}")
CODE = problem(f"the code was not accepted (`code-refused`); or {SSO_REQUIRED}")


class AccountController(Controller):
    path = "/console/api"
    tags = ["console: account security"]
    guards = [builtin_identity_only]

    @post(
        "/me/password",
        opt={**ACCOUNT, "rate_limit": "mfa"},
        status_code=200,
        summary="Change your password (ends your other sessions)",
        responses={403: REAUTH, 429: THROTTLED},
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        throttle: NamedDependency[Throttle],
        settings: NamedDependency[Settings],
    ) -> OtherSessionsEnded:
        revoked = await service.change_password(
            db,
            throttle,
            settings,
            console.account.id,
            keep_session_id=console.session.id,
            current_password=data.current_password,
            new_password=data.new_password,
            actor=console.actor,
        )
        return OtherSessionsEnded(sessions_revoked=revoked)

    @get("/mfa", opt=ACCOUNT, summary="Your MFA status", responses={403: SSO})
    async def mfa_status(
        self, console: NamedDependency[ConsoleContext], db: NamedDependency[AsyncSession]
    ) -> MfaStatusPublic:
        found = await console_mfa.status(db, console.account.id)
        return MfaStatusPublic(
            enabled=found.enabled,
            confirmed_at=found.confirmed_at,
            pending=found.pending,
            recovery_codes_remaining=found.recovery_codes_remaining,
        )

    @post(
        "/mfa/totp",
        opt=ACCOUNT,
        status_code=200,
        summary="Start TOTP enrolment with your password (answers the secret and QR code, once)",
        responses={403: REAUTH, 409: problem("MFA is already enabled (`conflict`)"), 429: THROTTLED},
    )
    async def start_totp(
        self,
        data: JSONBody[PasswordInput],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> TotpEnrolment:
        enrolment = await console_mfa.start_enrolment(
            db, second_factors, console.account.id, console.account.email, data.password, actor=console.actor
        )
        return TotpEnrolment(
            secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
        )

    @post(
        "/mfa/totp/confirm",
        opt={**ACCOUNT, "rate_limit": "mfa"},
        status_code=200,
        summary="Confirm TOTP with a first code: enables MFA, answers the recovery codes once",
        description="The current session is not upgraded: sign in again with a code for an MFA session (G6).",
        responses={403: CODE, 409: problem("no enrolment is pending (`conflict`)"), 429: THROTTLED},
    )
    async def confirm_totp(
        self,
        data: JSONBody[CodeInput],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> RecoveryCodes:
        codes = await console_mfa.confirm_enrolment(
            db, second_factors, console.account.id, console.session.id, data.code, actor=console.actor
        )
        return RecoveryCodes(recovery_codes=codes)

    @post(
        "/mfa/recovery-codes",
        opt={**ACCOUNT, "rate_limit": "mfa"},
        status_code=200,
        summary="Replace your recovery codes (needs a current TOTP code)",
        responses={403: CODE, 409: problem("MFA is not enabled (`conflict`)"), 429: THROTTLED},
    )
    async def regenerate_recovery_codes(
        self,
        data: JSONBody[CodeInput],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> RecoveryCodes:
        codes = await console_mfa.regenerate_recovery_codes(
            db, second_factors, console.account.id, data.code, actor=console.actor
        )
        return RecoveryCodes(recovery_codes=codes)

    @post(
        "/mfa/disable",
        opt={**ACCOUNT, "rate_limit": "mfa"},
        status_code=200,
        summary="Turn MFA off (password and a code or recovery code; ends your other sessions)",
        responses={
            403: problem(
                "the password is wrong (`reauthentication-failed`) or the code was not accepted "
                f"(`code-refused`); or {SSO_REQUIRED}"
            ),
            409: problem("MFA is not enabled (`conflict`)"),
            429: THROTTLED,
        },
    )
    async def disable(
        self,
        data: JSONBody[MfaDisable],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> OtherSessionsEnded:
        revoked = await console_mfa.disable(
            db,
            second_factors,
            console.account.id,
            console.session.id,
            password=data.password,
            code=data.code,
            recovery_code=data.recovery_code,
            actor=console.actor,
        )
        return OtherSessionsEnded(sessions_revoked=revoked)
