"""Hosted-page branding of a project: display name, primary colour, theme and logo, checked on write.

Logos are public files. Their type is read from their first bytes, never from the name or the
browser's content type; SVG is refused (it can carry scripts). The hosted pages read the branding row
on every request, so a change shows at once: there is no cache to invalidate. The URLs of the logo and
of the stylesheet carry a hash of what they serve, so browsers may keep them for good.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core import clock
from silver_auth.core.errors import InvalidInput
from silver_auth.core.text import has_control_characters
from silver_auth.projects.models import Project, ProjectBranding
from silver_auth.projects.service import record_for_project

THEMES = ("auto", "light", "dark")
MAX_DISPLAY_NAME = 60
MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_SIDE = 1024
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
ACCEPTED = "PNG, JPEG, WebP or GIF"
AA_CONTRAST = 4.5
"""WCAG 2 AA for normal text (1.4.3)."""
WHITE, NEAR_BLACK, BLACK = "#ffffff", "#111111", "#000000"
LIGHT_SURFACE, DARK_SURFACE = "#ffffff", "#1f2430"
"""The card the hosted pages draw their links on, in each theme (hosted.css)."""


@dataclass(frozen=True, slots=True)
class Image:
    kind: str
    """The file extension of its format: png, jpg, webp or gif."""
    width: int
    height: int


def _png(data: bytes) -> Image | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return Image("png", width, height)


def _gif(data: bytes) -> Image | None:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return Image("gif", width, height)


def _webp(data: bytes) -> Image | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 25:
        return None
    chunk = data[12:16]
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return Image("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if len(data) < 30:
        return None
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # a lossy key frame's start code
        width, height = struct.unpack("<HH", data[26:30])
        return Image("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return Image("webp", width, int.from_bytes(data[27:30], "little") + 1)
    return None


# Start-of-frame markers (baseline, progressive, lossless…); C4, C8 and CC are other segments.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> Image | None:
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return Image("jpg", width, height)
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # no length follows these
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def sniff_logo(data: bytes) -> Image:
    """The logo's format and size, read from its own bytes; InvalidInput saying what to upload instead."""
    if not data:
        raise InvalidInput("Choose an image file to upload.")
    if len(data) > MAX_LOGO_BYTES:
        raise InvalidInput(
            f"The logo is {-(-len(data) // 1024)} KiB; the limit is {MAX_LOGO_BYTES // 1024} KiB. "
            "Save it smaller (a PNG of a few hundred pixels is plenty) and upload it again."
        )
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") or b"<svg" in head:
        raise InvalidInput(
            f"SVG logos are not accepted: an SVG file can carry scripts. Export the logo as {ACCEPTED} "
            "and upload that."
        )
    for read in (_png, _jpeg, _gif, _webp):
        image = read(data)
        if image is not None:
            break
    else:
        raise InvalidInput(
            f"This file is not a {ACCEPTED} image (its content is checked, not its name). Export the "
            "logo in one of these formats and upload it again."
        )
    if not (0 < image.width <= MAX_LOGO_SIDE and 0 < image.height <= MAX_LOGO_SIDE):
        raise InvalidInput(
            f"The logo is {image.width}x{image.height} pixels; the limit is {MAX_LOGO_SIDE}x{MAX_LOGO_SIDE}. "
            "Resize it and upload it again."
        )
    return image


def clean_display_name(value: str) -> str | None:
    """The name the hosted pages show; blank: the project's own name."""
    name = " ".join(value.split())
    if not name:
        return None
    if has_control_characters(name):
        raise InvalidInput("The display name must not contain control characters.")
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"The display name is limited to {MAX_DISPLAY_NAME} characters; shorten it.")
    return name


def clean_colour(value: str) -> str | None:
    """`#rrggbb` in lower case; blank: the default colour."""
    colour = value.strip()
    if not colour:
        return None
    if not COLOUR.fullmatch(colour):
        raise InvalidInput(
            "The primary colour must be # and six hexadecimal digits, such as #1f5fbf. Pick it with the "
            "colour picker or type it so."
        )
    return colour.lower()


def clean_theme(value: str) -> str:
    if value not in THEMES:
        raise InvalidInput(f"The theme must be one of {', '.join(THEMES)}.")
    return value


# --- contrast (WCAG 2) ----------------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    """The relative luminance of `#rrggbb` (WCAG 2)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """The button text colour for `background`: white when it reaches AA, else near-black, else black
    (one of white and black always does)."""
    for candidate in (WHITE, NEAR_BLACK):
        if contrast(candidate, background) >= AA_CONTRAST:
            return candidate
    return BLACK


def _mix(colour: str, towards: str, share: float) -> str:
    mixed = (round(a + (b - a) * share) for a, b in zip(_rgb(colour), _rgb(towards), strict=True))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def readable_on(colour: str, surface: str) -> str:
    """`colour` itself when it reaches AA on `surface`, else the nearest shade towards black or white
    that does: links and focus rings follow the brand without becoming unreadable."""
    if contrast(colour, surface) >= AA_CONTRAST:
        return colour
    towards = BLACK if luminance(surface) > 0.5 else WHITE
    for step in range(1, 21):
        shade = _mix(colour, towards, step / 20)
        if contrast(shade, surface) >= AA_CONTRAST:
            return shade
    return towards


# --- the row --------------------------------------------------------------------------------------


DEFAULTS: dict[str, object] = {"display_name": None, "primary_colour": None, "theme": "auto"}
"""What a project without a branding row shows."""


@dataclass(frozen=True, slots=True)
class BrandingChanges:
    """What a change sets: None keeps a field, a blank name or colour goes back to the default."""

    display_name: str | None = None
    primary_colour: str | None = None
    theme: str | None = None


async def branding_of(
    db: AsyncSession, project_id: str, *, with_logo: bool = False
) -> ProjectBranding | None:
    """The project's branding row; its logo's bytes only `with_logo` (`logo_sha256` says whether
    there is one)."""
    options = [undefer(ProjectBranding.logo)] if with_logo else []
    return await db.get(ProjectBranding, project_id, options=options)


async def _row(db: AsyncSession, project: Project) -> ProjectBranding:
    row = await branding_of(db, project.id)
    if row is None:
        row = ProjectBranding(project_id=project.id, theme="auto", updated_at=clock.now())
        db.add(row)
    return row


async def update_branding(
    db: AsyncSession, project: Project, changes: BrandingChanges, *, actor: Actor
) -> dict[str, object]:
    """Set the display name, colour and theme; answers (and audits) what changed."""
    wanted: dict[str, object] = {}
    if changes.display_name is not None:
        wanted["display_name"] = clean_display_name(changes.display_name)
    if changes.primary_colour is not None:
        wanted["primary_colour"] = clean_colour(changes.primary_colour)
    if changes.theme is not None:
        wanted["theme"] = clean_theme(changes.theme)
    stored = await branding_of(db, project.id)
    changed = {
        name: value for name, value in wanted.items() if getattr(stored, name, DEFAULTS[name]) != value
    }
    if changed:
        row = await _row(db, project)
        for name, value in changed.items():
            setattr(row, name, value)
        await _changed(db, project, row, actor, changed)
    return changed


async def set_logo(db: AsyncSession, project: Project, data: bytes, *, actor: Actor) -> ProjectBranding:
    image = sniff_logo(data)
    row = await _row(db, project)
    digest = hashlib.sha256(data).hexdigest()
    if row.logo_sha256 != digest:
        row.logo, row.logo_type, row.logo_sha256 = data, image.kind, digest
        size = f"{image.width}x{image.height}"
        logo = {"sha256": digest, "type": image.kind, "bytes": len(data), "pixels": size}
        await _changed(db, project, row, actor, {"logo": logo})
    return row


async def remove_logo(db: AsyncSession, project: Project, *, actor: Actor) -> bool:
    """Remove the logo (its URL answers 404 from now on); False when there was none."""
    row = await branding_of(db, project.id)
    if row is None or row.logo_sha256 is None:
        return False
    row.logo = row.logo_type = row.logo_sha256 = None
    await _changed(db, project, row, actor, {"logo": None})
    return True


async def _changed(
    db: AsyncSession, project: Project, row: ProjectBranding, actor: Actor, changed: dict[str, object]
) -> None:
    row.updated_at = clock.now()
    await db.flush()
    await record_for_project(db, AuditAction.PROJECT_BRANDING_UPDATED, project, actor, {"changed": changed})


def logo_name(row: ProjectBranding) -> str | None:
    """The file name the logo is served under: project, content hash and format."""
    if row.logo_sha256 is None or row.logo_type is None:
        return None
    return f"{row.project_id}-{row.logo_sha256[:16]}.{row.logo_type}"


async def logo_named(db: AsyncSession, name: str) -> tuple[bytes, str] | None:
    """The bytes and media type behind a logo's file name; None for any other name (an old hash too)."""
    stem, _, kind = name.rpartition(".")
    project_id, _, digest = stem.rpartition("-")
    if kind not in MEDIA_TYPES or len(digest) != 16 or not project_id or len(project_id) > 40:
        return None
    row = await branding_of(db, project_id, with_logo=True)
    if row is None or row.logo is None or logo_name(row) != name:
        return None
    return row.logo, MEDIA_TYPES[kind]
