"""Hosted-page branding: set on the console page, shown on the hosted pages. Logos are checked from
their bytes (SVG, oversize, fake extensions and garbage refused, saying what to upload), served
byte for byte under a content-hashed URL that is cached for good and gone once the logo changes; the
colour reaches the pages through a hashed stylesheet, with the button text picked for AA contrast."""

from __future__ import annotations

import hashlib
import re
from itertools import product
from typing import Any

import httpx
import pytest

from silver_auth.projects import branding
from tests.console.support import assert_page
from tests.dbstate import row_count, snapshot
from tests.endusers.support import CustomerProject, customer_project
from tests.factories import ConsoleUser, Harness
from tests.hosted.images import gif, jpeg_head, png, webp_head

LOGO = re.compile(r'<img class="logo" src="(/p/assets/logos/[^"]+)" alt="">')
STYLESHEET = re.compile(r'<link rel="stylesheet" href="(/p/assets/branding/[^"]+\.css)">')
IMMUTABLE = "public, max-age=31536000, immutable"


def _path(project: CustomerProject) -> str:
    return f"/console/projects/{project.project_id}/branding"


def save(
    user: ConsoleUser,
    project: CustomerProject,
    *,
    logo: tuple[str, bytes, str] | None = None,
    **fields: str,
) -> httpx.Response:
    """Post the branding form as a browser does: multipart, with the file when one is chosen."""
    data = {
        "csrf_token": user.csrf_token,
        "display_name": "",
        "primary_colour": "",
        "theme": "auto",
        **fields,
    }
    files: dict[str, Any] = {"logo": logo or ("", b"", "application/octet-stream")}
    return user.post(_path(project), data=data, files=files, follow_redirects=False)


def hosted_sign_in(harness: Harness, project: CustomerProject) -> httpx.Response:
    response = harness.client.get(project.pages("sign-in"))
    assert response.status_code == 200, response.text
    return response


def logo_url(harness: Harness, project: CustomerProject) -> str:
    match = LOGO.search(hosted_sign_in(harness, project).text)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize(
    ("name", "data", "kind", "media_type"),
    [
        ("logo.png", png(), "png", "image/png"),
        ("logo.jpeg", jpeg_head(), "jpg", "image/jpeg"),
        ("logo.webp", webp_head(), "webp", "image/webp"),
        ("logo.gif", gif(), "gif", "image/gif"),
        ("logo.bin", png(8, 2), "png", "image/png"),  # the bytes decide, not the name
    ],
    ids=["png", "jpeg", "webp", "gif", "no-extension"],
)
def test_accepted_logo_is_served_byte_for_byte_under_its_hash(
    harness: Harness, name: str, data: bytes, kind: str, media_type: str
) -> None:
    project = customer_project(harness)
    saved = save(project.owner, project, logo=(name, data, "application/octet-stream"))
    assert saved.status_code == 303, saved.text
    digest = hashlib.sha256(data).hexdigest()
    url = logo_url(harness, project)
    assert url == f"/p/assets/logos/{project.project_id}-{digest[:16]}.{kind}"

    served = harness.client.get(url)
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == media_type
    assert served.headers["cache-control"] == IMMUTABLE
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"].startswith("default-src 'none'")

    page = assert_page(project.owner.get(_path(project)), 200)
    assert page.forms  # the admin's form and the remove-logo confirmation
    shown = project.owner.get(_path(project)).text
    assert f'src="data:{media_type};base64,' in shown and url in shown
    assert "project.branding_updated" in " ".join(snapshot(harness)["audit_events"])


def _refused(harness: Harness, project: CustomerProject, logo: tuple[str, bytes, str]) -> str:
    response = save(project.owner, project, logo=logo)
    assert_page(response, 422)
    assert row_count(harness, "project_brandings") == 0  # nothing written, the other fields neither
    return response.text


def test_svg_is_refused_whatever_it_is_called(harness: Harness) -> None:
    project = customer_project(harness)
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for name, content_type in (("logo.svg", "image/svg+xml"), ("logo.png", "image/png")):
        text = _refused(harness, project, (name, svg, content_type))
        assert "SVG logos are not accepted: an SVG file can carry scripts." in text
        assert "Export the logo as PNG, JPEG, WebP or GIF" in text


def test_oversize_logo_is_refused_with_the_limit(harness: Harness) -> None:
    project = customer_project(harness)
    big = png() + b"\x00" * (branding.MAX_LOGO_BYTES + 1)
    text = _refused(harness, project, ("logo.png", big, "image/png"))
    assert "the limit is 256 KiB" in text and "upload it again" in text


def test_too_many_pixels_is_refused(harness: Harness) -> None:
    project = customer_project(harness)
    text = _refused(harness, project, ("logo.png", png(2000, 10), "image/png"))
    assert "The logo is 2000x10 pixels; the limit is 1024x1024. Resize it" in text


@pytest.mark.parametrize(
    "data",
    [b"this is a text file, not a picture", b"\x89PNG\r\n\x1a\nbroken", b"GIF8", b"RIFF\x00\x00\x00\x00WAVE"],
    ids=["text", "truncated-png", "truncated-gif", "wave"],
)
def test_fake_extension_and_garbage_are_refused(harness: Harness, data: bytes) -> None:
    project = customer_project(harness)
    text = _refused(harness, project, ("logo.png", data, "image/png"))
    assert "This file is not a PNG, JPEG, WebP or GIF image (its content is checked, not its name)" in text


def test_old_logo_url_answers_404_after_a_change_and_after_removal(harness: Harness) -> None:
    project = customer_project(harness)
    assert save(project.owner, project, logo=("a.png", png(rgb=(1, 2, 3)), "image/png")).status_code == 303
    first = logo_url(harness, project)
    assert save(project.owner, project, logo=("b.png", png(rgb=(4, 5, 6)), "image/png")).status_code == 303
    second = logo_url(harness, project)
    assert first != second
    assert harness.client.get(first).status_code == 404
    assert harness.client.get(second).status_code == 200

    # Saving the other fields keeps the logo.
    assert save(project.owner, project, display_name="Acme").status_code == 303
    assert logo_url(harness, project) == second

    removed = project.owner.post(
        f"{_path(project)}/logo/remove", data={"csrf_token": project.owner.csrf_token}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert harness.client.get(second).status_code == 404
    assert LOGO.search(hosted_sign_in(harness, project).text) is None
    for name in ("nope.png", f"{project.project_id}-0000000000000000.png", "x-y.svg"):
        assert harness.client.get(f"/p/assets/logos/{name}").status_code == 404


def test_display_name_and_theme_show_on_the_hosted_pages(harness: Harness) -> None:
    project = customer_project(harness)
    assert 'class="theme-auto"' in hosted_sign_in(harness, project).text
    assert save(project.owner, project, display_name="  Acme   Cloud ", theme="dark").status_code == 303
    page = hosted_sign_in(harness, project).text
    assert '<html lang="en" class="theme-dark">' in page
    assert "<p>Acme Cloud <span" in page and "<title>Sign in · Acme Cloud</title>" in page
    assert "img-src 'self'" in harness.client.get(project.pages("sign-in")).headers["content-security-policy"]

    too_long = save(project.owner, project, display_name="x" * 61, theme="light")
    assert_page(too_long, 422)
    assert "limited to 60 characters" in too_long.text
    assert 'class="theme-dark"' in hosted_sign_in(harness, project).text  # nothing changed
    assert_page(save(project.owner, project, theme="sepia"), 422)


@pytest.mark.parametrize("colour", ["blue", "#fff", "#12345g", "1f5fbf", "#1f5fbf00", "rgb(1,2,3)"])
def test_colour_must_be_six_hex_digits(harness: Harness, colour: str) -> None:
    project = customer_project(harness)
    response = save(project.owner, project, primary_colour=colour)
    assert_page(response, 422)
    assert "The primary colour must be # and six hexadecimal digits, such as #1f5fbf." in response.text
    assert f'value="{colour}"' in response.text  # shown again to correct
    assert row_count(harness, "project_brandings") == 0


def test_colour_reaches_the_pages_through_a_hashed_stylesheet(harness: Harness) -> None:
    project = customer_project(harness)
    assert STYLESHEET.search(hosted_sign_in(harness, project).text) is None  # the default look
    assert save(project.owner, project, primary_colour="#FFD700").status_code == 303
    first = STYLESHEET.search(hosted_sign_in(harness, project).text)
    assert first is not None
    css = harness.client.get(first.group(1))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == IMMUTABLE
    assert "--brand: #ffd700;" in css.text
    assert "--brand-text: #111111;" in css.text  # gold is light: near-black text
    link = re.search(r"--brand-link-light: (#[0-9a-f]{6});", css.text)
    assert link is not None and branding.contrast(link.group(1), branding.LIGHT_SURFACE) >= 4.5

    assert save(project.owner, project, primary_colour="#1F5FBF").status_code == 303
    second = STYLESHEET.search(hosted_sign_in(harness, project).text)
    assert second is not None and second.group(1) != first.group(1)
    assert "--brand-text: #ffffff;" in harness.client.get(second.group(1)).text
    assert harness.client.get(first.group(1)).status_code == 404

    # The picker alone (no script to copy it into the text field) changes the colour too.
    picked = save(project.owner, project, primary_colour="#1f5fbf", primary_colour_picker="#aa0000")
    assert picked.status_code == 303
    assert 'value="#aa0000"' in project.owner.get(_path(project)).text


def test_button_text_always_reaches_aa() -> None:
    steps = range(0, 256, 17)
    for r, g, b in product(steps, steps, steps):
        colour = f"#{r:02x}{g:02x}{b:02x}"
        assert branding.contrast(branding.text_on(colour), colour) >= branding.AA_CONTRAST, colour
        for surface in (branding.LIGHT_SURFACE, branding.DARK_SURFACE):
            assert branding.contrast(branding.readable_on(colour, surface), surface) >= 4.5, colour
    assert branding.text_on("#1f5fbf") == "#ffffff"
    assert branding.text_on("#ffffff") == "#111111"
    assert branding.readable_on("#1f5fbf", branding.LIGHT_SURFACE) == "#1f5fbf"


def test_viewer_sees_the_branding_without_the_form(harness: Harness) -> None:
    project = customer_project(harness)
    viewer = harness.member(project.owner, project.org_id, "viewer")
    page = assert_page(viewer.get(_path(project)), 200)
    assert page.forms == [form for form in page.forms if form["action"] == "/console/sign-out"]
    assert "Admins and owners can change the branding." in viewer.get(_path(project)).text
    refused = save(viewer, project, display_name="Mine")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert row_count(harness, "project_brandings") == 0


def test_branding_form_needs_the_csrf_token(harness: Harness) -> None:
    project = customer_project(harness)
    response = project.owner.post(
        _path(project),
        data={"display_name": "Forged", "theme": "auto"},
        csrf=False,
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert row_count(harness, "project_brandings") == 0


def test_the_json_api_mirrors_the_text_fields(harness: Harness) -> None:
    project = customer_project(harness)
    api = f"/console/api/projects/{project.project_id}/branding"
    assert project.owner.ok("GET", api) == {
        "project_id": project.project_id,
        "display_name": None,
        "primary_colour": None,
        "button_text_colour": None,
        "theme": "auto",
        "logo_url": None,
    }
    changed = project.owner.ok("PATCH", api, json={"primary_colour": "#FFD700", "theme": "light"})
    assert (changed["primary_colour"], changed["button_text_colour"], changed["theme"]) == (
        "#ffd700",
        "#111111",
        "light",
    )
    kept = project.owner.ok("PATCH", api, json={"display_name": "Acme"})  # the others stay
    assert (kept["display_name"], kept["primary_colour"], kept["theme"]) == ("Acme", "#ffd700", "light")
    refused = project.owner.patch(api, json={"primary_colour": "gold"})
    assert refused.status_code == 422 and "six hexadecimal digits" in refused.json()["detail"]

    assert save(project.owner, project, logo=("a.png", png(), "image/png")).status_code == 303
    served = project.owner.ok("GET", api)["logo_url"]
    assert served == harness.settings.auth_url + logo_url(harness, project)
