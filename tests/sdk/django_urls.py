"""The URLconf of the Django integration test: one protected view."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from seqn_auth.django import seqn_login_required


@seqn_login_required
def me(request: HttpRequest) -> HttpResponse:
    user = request.seqn_user  # type: ignore[attr-defined]
    return JsonResponse({"user_id": user.user_id, "session_id": user.session_id})


def optional(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"error": request.seqn_auth_error})  # type: ignore[attr-defined]


urlpatterns = [path("me", me), path("optional", optional)]
