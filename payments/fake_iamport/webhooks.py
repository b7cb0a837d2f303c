"""Outgoing webhooks of the fake I'mport server (specs/iamport-v1.md §2.7).

Each notification is delivered from its own background thread, so the browser's
redirect never waits for it (as with the real service, their order is not
guaranteed). Knobs: delay, duplicate, drop, retry on 5xx, JSON or form bodies.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, fields
from typing import Any

FORMATS = ("json", "form")


@dataclass
class WebhookConfig:
    delay_seconds: float = 0.0
    # Send every notification twice (the real service can duplicate).
    duplicate: bool = False
    # Log the notification but never send it (a lost webhook).
    drop: bool = False
    # The merchant's opt-in: on a network error or 5xx, retry up to max_retries times.
    retry_on_5xx: bool = False
    max_retries: int = 5
    # The real service waits a minute between retries; tests want it short.
    retry_interval: float = 0.1
    # "json" (application/json) or "form" (application/x-www-form-urlencoded), a console setting.
    format: str = "json"
    timeout: float = 10.0

    def update(self, values: dict[str, Any]) -> None:
        """Apply values from a JSON or form body, converting types; ValueError if invalid."""
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown webhook setting {key!r}; known: {', '.join(known)}")
            current = getattr(self, key)
            if isinstance(current, bool):
                value = to_bool(value)
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
                if value < 0:
                    raise ValueError(f"{key} must not be negative")
            elif key == "format" and value not in FORMATS:
                raise ValueError(f"format must be one of {FORMATS}")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class WebhookSender:
    """Sends notifications in background threads and logs every attempt."""

    def __init__(self, *, default_format: str = "json") -> None:
        # What reset() restores `config.format` to (the CLI's --webhook-format).
        self.default_format = default_format
        self.config = WebhookConfig(format=default_format)
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._cancelled = threading.Event()
        self._next_id = 1

    def send(self, url: str | None, body: dict[str, Any]) -> int:
        """Queue one notification; returns its delivery id (see `log`)."""
        with self._lock:
            delivery = self._next_id
            self._next_id += 1
            config = WebhookConfig(**self.config.as_dict())  # a snapshot: later changes don't apply
            cancelled = self._cancelled
            thread = threading.Thread(
                target=self._deliver,
                args=(delivery, url, dict(body), config, cancelled),
                name=f"fake-iamport-webhook-{delivery}",
                daemon=True,
            )
            self._threads.append(thread)
        thread.start()
        return delivery

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification has finished; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                alive = [t for t in self._threads if t.is_alive()]
                self._threads = alive
            if not alive:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            alive[0].join(min(remaining, 0.05))

    def reset(self) -> None:
        """Abandon pending deliveries (delays and retries stop early), clear log and knobs."""
        with self._lock:
            self._cancelled.set()
            self._cancelled = threading.Event()
            threads = self._threads
            self._threads = []
        for thread in threads:
            thread.join(1.0)
        with self._lock:
            self.log.clear()
            self.config = WebhookConfig(format=self.default_format)
            self._next_id = 1

    def _record(self, entry: dict[str, Any], cancelled: threading.Event) -> None:
        with self._lock:
            if not cancelled.is_set():  # a reset happened: don't leak into the new log
                self.log.append(entry)

    def _deliver(
        self, delivery: int, url: str | None, body: dict[str, Any], config: WebhookConfig, cancelled: threading.Event
    ) -> None:
        base = {"delivery": delivery, "url": url, "body": body, "format": config.format}
        if config.delay_seconds and cancelled.wait(config.delay_seconds):
            return
        if not url:
            self._record({**base, "attempt": 0, "outcome": "no_url", "status_code": None, "at": time.time()}, cancelled)
            return
        if config.drop:
            self._record(
                {**base, "attempt": 0, "outcome": "dropped", "status_code": None, "at": time.time()}, cancelled
            )
            return
        for _copy in range(2 if config.duplicate else 1):
            self._deliver_once(base, url, body, config, cancelled)

    def _deliver_once(
        self, base: dict[str, Any], url: str, body: dict[str, Any], config: WebhookConfig, cancelled: threading.Event
    ) -> None:
        if config.format == "form":
            data = urllib.parse.urlencode(body).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            content_type = "application/json"
        attempts = 1 + (config.max_retries if config.retry_on_5xx else 0)
        for attempt in range(1, attempts + 1):
            if cancelled.is_set():
                return
            status, error = None, ""
            request = urllib.request.Request(
                url, data=data, method="POST", headers={"Content-Type": content_type, "User-Agent": "FakeIamport/1.0"}
            )
            try:
                with urllib.request.urlopen(request, timeout=config.timeout) as response:
                    status = response.status
                    response.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused, bad URL
                error = f"{exc.__class__.__name__}: {exc}"
            retryable = status is None or status >= 500
            outcome = "delivered" if status is not None and 200 <= status < 300 else "failed"
            self._record(
                {
                    **base,
                    "attempt": attempt,
                    "outcome": outcome,
                    "status_code": status,
                    "error": error,
                    "at": time.time(),
                },
                cancelled,
            )
            if not retryable or attempt == attempts:
                return
            if cancelled.wait(config.retry_interval):
                return
