"""Fixtures for the notification tests: bookings with deadlines, a real SMTP server."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from events.tests.factories import UserFactory
from payments.models import Payment
from reservations.services import reservation_await_payment
from reservations.tests.factories import hold
from ticketing.celery import app

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))


def vbank_booking(user, performance, *labels, booked_at: dt.datetime, due: dt.datetime, status="awaiting_deposit"):
    """A hold paid by virtual account: the account issued at `booked_at`, due at `due`."""
    reservation = hold(user, performance, *(labels or (A1,)), now=booked_at)
    payment = Payment.objects.create(
        reservation=reservation,
        amount=reservation.total_amount,
        method=Payment.Method.VBANK,
        status=status,
        imp_uid=f"imp_{reservation.code.lower()}",
        vbank_name="국민은행",
        vbank_num="94420200123456",
        vbank_holder="(주)티켓팅",
        vbank_due=due,
        created_at=booked_at,
    )
    reservation = reservation_await_payment(reservation=reservation, until=due, now=booked_at)
    return reservation, payment


@pytest.fixture
def alice(db):
    """A customer who reads English (the assertions do); tests of Korean switch."""
    return UserFactory(email="alice@example.com", name="Alice Kim", preferred_language="en")


@pytest.fixture
def bob(db):
    """Another customer, also reading English."""
    return UserFactory(email="bob@example.com", name="Bob Lee", preferred_language="en")


@pytest.fixture
def booked_at():
    """When the test's booking is made: now, on a whole minute (the factory's sales are open)."""
    return timezone.now().replace(second=0, microsecond=0)


# --- A real SMTP server on loopback ---------------------------------------------------


@dataclass
class Mailbox:
    """What an aiosmtpd server received. Recipients starting with "bounce" are refused
    for good (550), ones starting with "busy" for now (451)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server):
    """Django sends through the loopback SMTP server instead of the test outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    return smtp_server


@contextlib.contextmanager
def celery_broker(url: str):
    """Publish this process's tasks to the broker at `url`, for real (not eagerly).

    The app's connection pools are built on first use and kept, so they are set
    aside and restored. (The pool built for `url` stays in kombu's registry, one per
    URL, for the next use of the same URL.)
    """
    saved = {"CELERY_BROKER_URL": app.conf.broker_url, "CELERY_TASK_ALWAYS_EAGER": app.conf.task_always_eager}
    pools = app._pool, app.amqp._producer_pool
    app._pool = app.amqp._producer_pool = None
    app.conf.update(CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=False)
    try:
        yield app
    finally:
        app._pool, app.amqp._producer_pool = pools
        app.conf.update(**saved)
