"""Helpers for the gateway and fake-server tests.

The shared fixtures (`fake_iamport_server`, `fake_iamport`) live in payments/testing.py,
registered from the root conftest.py; these are only for this package's tests.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from iamport import Iamport

from payments.fake_iamport import FakeIamport
from payments.testing import FAKE_KEY, FAKE_SECRET


@dataclass
class ReceivedWebhook:
    path: str
    content_type: str
    raw: bytes
    at: float

    @property
    def data(self) -> dict[str, Any]:
        if self.content_type.startswith("application/json"):
            return json.loads(self.raw)
        return dict(urllib.parse.parse_qsl(self.raw.decode()))


@dataclass
class WebhookReceiver:
    """A tiny merchant endpoint that records webhooks and answers scripted statuses."""

    url: str = ""
    received: list[ReceivedWebhook] = field(default_factory=list)
    # Statuses for the next requests, in order; 200 once they run out.
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            raise AssertionError(f"expected {count} webhooks, got {len(self.received)}: {self.received}")


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(
                    ReceivedWebhook(self.path, self.headers.get("Content-Type", ""), raw, time.monotonic())
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def iamport(fake_iamport: FakeIamport) -> Iamport:
    """The real iamport-rest-client, unmodified, pointed at the fake."""
    return Iamport(FAKE_KEY, FAKE_SECRET, imp_url=fake_iamport.url)


@pytest.fixture
def control(fake_iamport: FakeIamport):
    """POST/GET a /__fake__/ control endpoint over HTTP; returns (status, json)."""

    def call(path: str, body: dict[str, Any] | None = None, *, method: str = "POST") -> tuple[int, Any]:
        response = requests.request(method, f"{fake_iamport.url}__fake__/{path}", json=body, timeout=5)
        return response.status_code, response.json()

    return call
