"""The Rust host's sandbox rules, in Python: which installation a call is bound to
(host-harness/src/runtime/binding.rs) and which sites it may reach (imports/egress.rs)."""

from __future__ import annotations

import base64
import json
from typing import Optional
from urllib.parse import unquote_to_bytes, urlsplit

from .types import HttpError, WebhookRequest

WEBHOOK_PATH = "/extensions/jira/issue-updated"
ADMIN_WEBHOOK_PREFIX = "/webhooks/admin/"
OAUTH_WEBHOOK_PREFIX = "/webhooks/oauth/"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; ValueError when it has none."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    return scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme]


def _serialize(origin: tuple[str, str, int]) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


class Egress:
    """The origins the guest may reach in one call: those of the installations it looked up."""

    def __init__(self) -> None:
        self._allowed: list[tuple[str, str, int]] = []

    def allow(self, base_url: str) -> None:
        """Allows the origin of `base_url`; a base URL that is not http(s) allows nothing."""
        try:
            origin = _origin(base_url)
        except ValueError:
            return
        if origin not in self._allowed:
            self._allowed.append(origin)

    def check(self, url: str) -> Optional[HttpError]:
        """None when `url` is http(s) on an allowed origin; the refusal otherwise."""
        try:
            parts = urlsplit(url)
            if not parts.scheme:
                raise ValueError("relative URL without a base")
            parts.port  # noqa: B018 -- raises on a malformed port
        except ValueError as e:
            return HttpError("invalid-request", f"{url}: {e}")
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return HttpError("denied", f"scheme `{scheme}` is not allowed")
        try:
            origin = _origin(url)
        except ValueError as e:
            return HttpError("invalid-request", f"{url}: {e}")
        if origin in self._allowed:
            return None
        return HttpError("denied", f"{_serialize(origin)} is not the site of an installation of this call")


def webhook_tenant(request: WebhookRequest) -> Optional[str]:
    """The client key a webhook's route or credential names, unverified: an admin or OAuth
    webhook's path, or a Connect token's `iss`. The guest then verifies it."""
    path = request.path.rstrip("/")
    if path == WEBHOOK_PATH:
        authorization = next((v for k, v in request.headers if k.lower() == "authorization"), None)
        return None if authorization is None else _credential_tenant(authorization)
    for prefix in (ADMIN_WEBHOOK_PREFIX, OAUTH_WEBHOOK_PREFIX):
        if path.startswith(prefix):
            try:
                key = unquote_to_bytes(path[len(prefix):]).decode("utf-8")
            except UnicodeDecodeError:
                return None
            return key if key and "/" not in key else None
    return None


def _credential_tenant(authorization: str) -> Optional[str]:
    # Read as the guest reads it; more lenient than its decoder, never stricter: the guest
    # refuses what it cannot verify, and a stricter binding would change its answer.
    _, _, token = authorization.strip().partition(" ")
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None
