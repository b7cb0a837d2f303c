"""The scheduler for real: a Celery worker process, Redis, and an SMTP server.

Everything the other tests run in-process (eagerly) here crosses real boundaries:
this process publishes the periodic tasks to Redis, a `celery -A ticketing worker`
subprocess consumes both queues against this test's own database (the SQLite file
or the MariaDB test database, committed data: transaction=True), and sends mail over
SMTP to an aiosmtpd server on loopback.

Redis must be running (it always is here and in CI, which starts it). Without it this
test fails; it never skips. The broker is Redis database 15 on the REDIS_URL host (or
127.0.0.1:6379 when REDIS_URL is unset, the SQLite run): that database belongs to this
test, which empties it first so no task of an earlier run is delivered.
"""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from notifications.models import Notification
from notifications.tasks import send_payment_reminders
from payments.models import Payment
from reservations.models import InventoryItem, Reservation
from reservations.tasks import release_expired_holds
from reservations.tests.factories import hold

from .conftest import A1, A2, celery_broker, vbank_booking

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
SITE = "https://tickets.example.com"


def broker_url() -> str:
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return base._replace(path="/15").geturl()


def database_url() -> str:
    """A URL for the database this test is using (the test database, not the real one)."""
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        return f"sqlite:///{db['NAME']}"  # an absolute path: sqlite:////tmp/...
    assert "mysql" in db["ENGINE"], db["ENGINE"]
    credentials = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"


@pytest.fixture
def redis_broker():
    url = broker_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed for the real worker test and does not answer at {url}: {exc}")
    client.flushdb()  # database 15 is this test's; nothing stale may be delivered
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def worker(transactional_db, redis_broker, smtp_server, tmp_path):
    """A real `celery worker` process on both queues, as compose.yaml runs them."""
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_broker,
        "CELERY_BROKER_URL": redis_broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_URL": f"smtp://{smtp_server.host}:{smtp_server.port}",
        "SITE_URL": SITE,
        "DJANGO_SETTINGS_MODULE": "ticketing.settings",
        # The fake I'mport of this test, when it has one (set up before the worker).
        "IAMPORT_API_URL": settings.IAMPORT_API_URL,
        "IAMPORT_API_KEY": settings.IAMPORT_API_KEY,
        "IAMPORT_API_SECRET": settings.IAMPORT_API_SECRET,
    }
    env.pop("PYTEST_XDIST_WORKER", None)  # settings would pick a per-test-worker cache database
    command = [sys.executable, "-m", "celery", "-A", "ticketing", "worker", "-Q", "default,email", "-c", "2"]
    command += ["-l", "info", "-n", f"test-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        process.terminate()  # warm shutdown: running tasks finish
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(check, what: str, log: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-5000:]}")


def succeeded(log: Path, task: str) -> int:
    return sum(1 for line in log.read_text().splitlines() if f".{task}[" in line and " succeeded in " in line)


def test_a_real_worker_delivers_the_reminder_and_releases_an_expired_hold(alice, bob, performance, worker, smtp_server):
    process, log = worker
    now = timezone.now()
    # Alice's virtual account, issued 2 hours ago and due in 2 h 50: the 3-hour reminder is due.
    reminded, payment = vbank_booking(
        alice, performance, A1, booked_at=now - dt.timedelta(hours=2), due=now + dt.timedelta(minutes=170)
    )
    # Bob opened a card payment 30 minutes ago and walked away: his hold has expired.
    expired = hold(bob, performance, A2, now=now - dt.timedelta(minutes=30))
    Payment.objects.create(reservation=expired, amount=expired.total_amount, method="card")

    with celery_broker(broker_url()):
        send_payment_reminders.delay()
        release_expired_holds.delay()

    messages = smtp_server.wait_for(2, timeout=90)
    assert process.poll() is None, log.read_text()
    by_recipient = {message["To"]: message for message in messages}
    assert set(by_recipient) == {"alice@example.com", "bob@example.com"}

    reminder = by_recipient["alice@example.com"]
    assert f"Reminder: please pay for booking {reminded.code}" in reminder["Subject"]
    text = reminder.get_body(("plain",)).get_content()
    assert payment.vbank_num in text and "₩122,000" in text and "About 3 hours are left" in text
    assert f"{SITE}/my/bookings/{reminded.code}/" in text
    assert f'href="{SITE}/my/bookings/{reminded.code}/"' in reminder.get_body(("html",)).get_content()

    release = by_recipient["bob@example.com"]
    assert f"Booking {expired.code} has expired" in release["Subject"]

    # The sweeper recorded the expiry and put the seat back on sale.
    expired.refresh_from_db()
    assert expired.status == Reservation.Status.EXPIRED
    assert InventoryItem.objects.get(reservation__isnull=True, seat__label=A2, performance=performance).status == (
        "available"
    )
    # And the log says what happened, once each.
    wait_until(
        lambda: Notification.objects.filter(status="sent").count() == 2,
        "both notifications recorded as sent",
        log,
    )
    assert set(Notification.objects.values_list("kind", "attempts")) == {
        ("payment_reminder", 1),
        ("booking_expired", 1),
    }

    # The same periodic tasks again (beat firing twice): nothing more is sent.
    with celery_broker(broker_url()):
        send_payment_reminders.delay()
        release_expired_holds.delay()
    for task in ("send_payment_reminders", "release_expired_holds"):
        wait_until(lambda task=task: succeeded(log, task) == 2, f"the second {task}", log)
    time.sleep(1)  # anything they had queued would be on its way by now
    assert len(smtp_server.messages) == 2
    assert Notification.objects.count() == 2


@pytest.fixture
def worker_with_fake_iamport(fake_iamport, worker):
    """The worker, talking to this test's fake I'mport (set up first, so the worker's
    environment names it)."""
    return worker


def test_a_real_worker_refunds_a_cancelled_performance_retrying_a_gateway_error(
    alice, performance, fake_iamport, worker_with_fake_iamport, smtp_server
):
    from events.tests.factories import UserFactory
    from payments import services
    from payments.tests.test_flow import paid_booking

    process, log = worker_with_fake_iamport
    booking, payment = paid_booking(fake_iamport, alice, performance, A1)
    fake_iamport.add_fault(status=500, count=1, match="payments/cancel")  # the first refund call fails

    with celery_broker(broker_url()):
        summary = services.performance_cancel(performance=performance, actor=UserFactory(is_staff=True))
    assert summary.refunds_queued == 1

    (message,) = smtp_server.wait_for(1, timeout=90)
    assert process.poll() is None, log.read_text()
    assert message["To"] == "alice@example.com"
    assert "The organiser has cancelled this performance" in message.get_body(("plain",)).get_content()
    payment.refresh_from_db()
    booking.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    assert booking.status == "cancelled"
    text = log.read_text()
    assert "refund_cancelled_booking" in text and " retry: " in text.lower(), text[-3000:]
    assert list(payment.events.values_list("kind", flat=True)).count("refunded") == 1
