"""pytest fixtures for code that talks to I'mport: a real HTTP fake server per test run.

Registered for the whole project from the root conftest.py (`pytest_plugins`), so any
test can ask for them:

    def test_checkout(fake_iamport, client):
        # settings.IAMPORT_* now point at the fake, which was reset for this test;
        # payments.gateway.get_gateway() builds a gateway for it.
        session = fake_iamport.checkout({"merchant_uid": "tkt_1", "amount": 1000})
        fake_iamport.wait_for_webhooks()
        assert fake_iamport.payments[session.imp_uid]["status"] == "paid"

- `fake_iamport_server` (session): one FakeIamport on a free port, per xdist worker.
- `fake_iamport` (function): the same server, reset, with settings pointing at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments.fake_iamport import FakeIamport

FAKE_KEY = "test-imp-key"
FAKE_SECRET = "test-imp-secret"
FAKE_MERCHANT_CODE = "imp00000000"


@pytest.fixture(scope="session")
def fake_iamport_server() -> Iterator[FakeIamport]:
    """A FakeIamport serving on 127.0.0.1:<free port> for the whole test session."""
    fake = FakeIamport("127.0.0.1", 0, imp_key=FAKE_KEY, imp_secret=FAKE_SECRET)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_iamport(fake_iamport_server: FakeIamport, settings) -> Iterator[FakeIamport]:
    """The fake server, reset, with settings.IAMPORT_* pointing at it.

    Timeouts are short so that a test of a stalled gateway stays quick. Pending
    webhooks are abandoned when the test ends (call `wait_for_webhooks()` to await them).
    """
    fake_iamport_server.reset()
    settings.IAMPORT_API_URL = fake_iamport_server.url
    settings.IAMPORT_API_KEY = FAKE_KEY
    settings.IAMPORT_API_SECRET = FAKE_SECRET
    settings.IAMPORT_MERCHANT_CODE = FAKE_MERCHANT_CODE
    settings.IAMPORT_JS_SDK_URL = fake_iamport_server.sdk_url
    settings.IAMPORT_CONNECT_TIMEOUT = 2.0
    settings.IAMPORT_READ_TIMEOUT = 2.0
    yield fake_iamport_server
    fake_iamport_server.reset()
