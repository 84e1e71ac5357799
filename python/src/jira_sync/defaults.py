"""Ready-made imports for what is not the platform's own: HTTP over urllib, an in-process cache
and delivery register, the system clock and `logging`. A platform supplies its installations and
groups itself (README, "A Python platform")."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Optional, Union

from .types import ClaimOutcome, HttpError, HttpRequest, HttpResponse, IssueField, LogLevel


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would take the request to a site the sandbox never checked: Jira's 3xx goes
    # back to the component as it is.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibHttp:
    """Sends the component's requests with urllib: no redirects, a timeout, a body cap."""

    def __init__(self, timeout_seconds: float = 10.0, max_body_bytes: int = 1024 * 1024) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, request: HttpRequest) -> Union[HttpResponse, HttpError]:
        sent = urllib.request.Request(request.url, request.body, dict(request.headers), method=request.method)
        try:
            with self._opener.open(sent, timeout=self.timeout_seconds) as answer:
                return self._read(answer.status, answer)
        except urllib.error.HTTPError as answer:
            return self._read(answer.code, answer)
        except TimeoutError:
            return HttpError("timeout")
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                return HttpError("timeout")
            return HttpError("connection", str(e.reason))
        except (OSError, ValueError) as e:
            return HttpError("connection", str(e))

    def _read(self, status: int, answer: Any) -> Union[HttpResponse, HttpError]:
        body = answer.read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return HttpError("response-too-large", limit=self.max_body_bytes)
        return HttpResponse(status, list(answer.headers.items()), body)


class MemoryCache:
    """The component's cache in this process, on the system clock."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[str]:
        with self._lock:
            value, expires = self._entries.get(key, ("", 0.0))
            if expires > time.time():
                return value
            self._entries.pop(key, None)
            return None

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._entries[key] = (value, time.time() + ttl_seconds)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class MemoryDeliveries:
    """Jira's deliveries as one process remembers them: for a platform with one server (several
    need a shared store, e.g. a table with a unique key per delivery)."""

    def __init__(self) -> None:
        self._claimed: set[tuple[str, str]] = set()
        self._handled: set[tuple[str, str]] = set()
        self._applied: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def claim(self, client_key: str, delivery_id: str) -> ClaimOutcome:
        key = (client_key, delivery_id)
        with self._lock:
            if key in self._handled:
                return "handled"
            if key in self._claimed:
                return "in-progress"
            self._claimed.add(key)
            return "claimed"

    def mark_handled(self, client_key: str, delivery_id: str) -> None:
        with self._lock:
            self._handled.add((client_key, delivery_id))
            self._claimed.discard((client_key, delivery_id))

    def release(self, client_key: str, delivery_id: str) -> None:
        with self._lock:
            self._claimed.discard((client_key, delivery_id))

    def last_applied(self, client_key: str, issue_key: str, field: IssueField) -> Optional[int]:
        with self._lock:
            return self._applied.get((client_key, issue_key, field))

    def set_last_applied(self, client_key: str, issue_key: str, field: IssueField, updated_ms: int) -> None:
        with self._lock:
            at = (client_key, issue_key, field)
            self._applied[at] = max(updated_ms, self._applied.get(at, updated_ms))


class SystemClock:
    """The system's clock; `sleep` blocks the calling thread."""

    def now(self) -> int:
        return int(time.time())

    def sleep(self, seconds: int) -> None:
        time.sleep(seconds)


_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR}


class StdLog:
    """The component's events to `logging`, logger `jira_sync` by default."""

    def __init__(self, logger: Optional[logging.Logger] = None) -> None:
        self.logger = logger or logging.getLogger("jira_sync")

    def log(self, level: LogLevel, event: str, fields: list[tuple[str, str]]) -> None:
        self.logger.log(_LEVELS[level], "%s %s", event, dict(fields), extra={"event": event})
