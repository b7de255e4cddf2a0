"""What the MVP leaves out, said the same way everywhere it is said: `/v1/config`, the OpenAPI
description, the README, and `doctor`, which checks that each still says it (L8)."""

from __future__ import annotations

EXCLUDED_FROM_MVP: tuple[str, ...] = ("email_delivery", "payment_collection")
EXCLUSION_STATEMENT = "Email delivery and payment collection are excluded from the MVP"
"""Invitations are one-time links handed over by hand; plan changes are platform-admin actions."""
