"""payments.gateway over HTTP against the fake I'mport server, through the real client."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from types import SimpleNamespace

import pytest

from payments import gateway as gateway_module
from payments.gateway import (
    Gateway,
    GatewayError,
    GatewayPayment,
    GatewayRejected,
    GatewayUnavailable,
    PaymentNotFound,
    get_gateway,
)
from payments.testing import FAKE_KEY, FAKE_SECRET


@pytest.fixture
def gateway(fake_iamport) -> Gateway:
    return get_gateway()


def checkout(fake, merchant_uid: str, amount: int, outcome: str = "approve", **params) -> str:
    session = fake.checkout({"merchant_uid": merchant_uid, "amount": amount, "outcome": outcome, **params})
    assert session.rsp["imp_uid"], session.rsp
    return session.rsp["imp_uid"]


def token_requests(fake) -> int:
    return len(fake.requests_to("/users/getToken"))


# --- settings and construction ------------------------------------------------------


def test_get_gateway_is_cached_and_follows_settings(fake_iamport, settings):
    gateway = get_gateway()
    assert get_gateway() is gateway
    assert gateway.api_url == fake_iamport.url
    settings.IAMPORT_READ_TIMEOUT = 7.0
    rebuilt = get_gateway()
    assert rebuilt is not gateway
    assert rebuilt.client.requests_session.get_adapter("https://api.iamport.kr/").timeout == (2.0, 7.0)


def test_timeouts_are_set_on_http_and_https(fake_iamport):
    gateway = Gateway(api_url="http://x", api_key="k", api_secret="s", connect_timeout=1.5, read_timeout=4)
    assert gateway.api_url == "http://x/"
    session = gateway.client.requests_session
    for url in ("http://127.0.0.1/", "https://api.iamport.kr/"):
        assert session.get_adapter(url).timeout == (1.5, 4)


# --- prepare ---------------------------------------------------------------------------


def test_prepare_is_idempotent_for_the_same_amount(gateway, fake_iamport):
    gateway.prepare(merchant_uid="tkt_p1", amount=30000)
    gateway.prepare(merchant_uid="tkt_p1", amount=30000)  # a retried checkout
    assert fake_iamport.prepared["tkt_p1"]["amount"] == 30000
    with pytest.raises(GatewayRejected) as raised:
        gateway.prepare(merchant_uid="tkt_p1", amount=1)
    assert "30000" in raised.value.message and raised.value.code == 1
    assert not isinstance(raised.value, PaymentNotFound)


@pytest.mark.parametrize(
    ("merchant_uid", "amount"), [("a/b", 1000), ("", 1000), ("x" * 41, 1000), ("tkt", 0), ("tkt", "1000")]
)
def test_prepare_rejects_bad_arguments_before_any_request(gateway, fake_iamport, merchant_uid, amount):
    with pytest.raises(ValueError):
        gateway.prepare(merchant_uid=merchant_uid, amount=amount)
    assert fake_iamport.request_log == []


def test_prepared_amount_is_enforced_at_checkout(gateway, fake_iamport):
    gateway.prepare(merchant_uid="tkt_p2", amount=50000)
    tampered = fake_iamport.checkout({"merchant_uid": "tkt_p2", "amount": 500, "outcome": "approve"})
    assert tampered.rsp["imp_uid"] is None and tampered.rsp["error_code"]
    with pytest.raises(PaymentNotFound):
        gateway.find_by_merchant_uid(merchant_uid="tkt_p2")


# --- find ------------------------------------------------------------------------------


def test_find_maps_the_payment(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_f1", 15000, pay_method="card")
    payment = gateway.find(imp_uid=imp_uid)
    assert isinstance(payment, GatewayPayment)
    assert (payment.imp_uid, payment.merchant_uid, payment.amount, payment.cancel_amount) == (
        imp_uid,
        "tkt_f1",
        15000,
        0,
    )
    assert (payment.currency, payment.status, payment.pay_method) == ("KRW", "paid", "card")
    raw = fake_iamport.payments[imp_uid]
    assert payment.paid_at == dt.datetime.fromtimestamp(raw["paid_at"], dt.UTC)
    assert payment.paid_at.tzinfo is dt.UTC
    assert payment.failed_at is None and payment.cancelled_at is None and payment.vbank_date is None
    assert payment.fail_reason == "" and payment.vbank_num == ""
    assert payment.receipt_url.endswith(imp_uid)
    assert payment.raw["imp_uid"] == imp_uid and payment.cancellable_amount == 15000


def test_find_failed_and_vbank_payments(gateway, fake_iamport):
    failed = gateway.find(imp_uid=checkout(fake_iamport, "tkt_f2", 1000, outcome="decline"))
    assert failed.status == "failed" and failed.failed_at is not None and failed.fail_reason
    vbank = gateway.find(imp_uid=checkout(fake_iamport, "tkt_f3", 2000, outcome="vbank"))
    assert (vbank.status, vbank.pay_method, vbank.vbank_name) == ("ready", "vbank", "국민은행")
    assert vbank.vbank_num and vbank.vbank_holder
    assert vbank.vbank_date - dt.datetime.now(dt.UTC) > dt.timedelta(days=2, hours=23)


def test_find_by_merchant_uid_returns_the_latest_attempt(gateway, fake_iamport):
    checkout(fake_iamport, "tkt_f4", 1000, outcome="decline")
    fake_iamport.advance_clock(1)
    paid = checkout(fake_iamport, "tkt_f4", 1000)
    assert gateway.find_by_merchant_uid(merchant_uid="tkt_f4").imp_uid == paid


@pytest.mark.parametrize("kind", ["imp_uid", "merchant_uid"])
def test_unknown_payment_is_payment_not_found(gateway, kind):
    with pytest.raises(PaymentNotFound) as raised:
        if kind == "imp_uid":
            gateway.find(imp_uid="imp_000000000000")
        else:
            gateway.find_by_merchant_uid(merchant_uid="tkt_none")
    assert raised.value.code == 404
    assert isinstance(raised.value, GatewayRejected)


@pytest.mark.parametrize("uid", ["a/b", "../payments/imp_1", "x?y", "imp 1", "", "결제", None, "x" * 65])
def test_impossible_identifiers_are_not_found_without_a_request(gateway, fake_iamport, uid):
    with pytest.raises(PaymentNotFound):
        gateway.find(imp_uid=uid)
    with pytest.raises(PaymentNotFound):
        gateway.find_by_merchant_uid(merchant_uid=uid)
    with pytest.raises(PaymentNotFound):
        gateway.cancel(imp_uid=uid, reason="r")
    assert fake_iamport.request_log == []


# --- tokens ----------------------------------------------------------------------------


def test_token_is_cached_across_calls(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_t1", 1000)
    for _ in range(5):
        gateway.find(imp_uid=imp_uid)
    assert token_requests(fake_iamport) == 1
    assert len(fake_iamport.requests_to(f"/payments/{imp_uid}")) == 5
    assert len(fake_iamport.request_log) == 6  # one sync costs one lookup


def test_expired_token_is_refreshed_once_on_401(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_t2", 1000)
    gateway.find(imp_uid=imp_uid)
    fake_iamport.advance_clock(31 * 60)  # the server's clock: our cache still trusts the token
    assert gateway.find(imp_uid=imp_uid).imp_uid == imp_uid
    log = [(r["method"], r["path"], r["status"]) for r in fake_iamport.request_log]
    assert log[1:] == [
        ("GET", f"/payments/{imp_uid}", 200),
        ("GET", f"/payments/{imp_uid}", 401),
        ("POST", "/users/getToken", 200),
        ("GET", f"/payments/{imp_uid}", 200),
    ]


def test_revoked_tokens_are_refreshed(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_t3", 1000)
    gateway.find(imp_uid=imp_uid)
    fake_iamport.expire_tokens()
    gateway.cancel(imp_uid=imp_uid, reason="r", amount=100)  # safe to retry: a 401 executes nothing
    assert fake_iamport.payments[imp_uid]["cancel_amount"] == 100
    assert token_requests(fake_iamport) == 2


def test_persistent_401_is_rejected_after_one_retry(gateway, fake_iamport):
    fake_iamport.add_fault(status=401, match="/payments/", count=None)
    with pytest.raises(GatewayRejected) as raised:
        gateway.find(imp_uid="imp_000000000000")
    assert raised.value.code == 401
    assert len(fake_iamport.requests_to("/payments/")) == 2


def test_wrong_credentials_are_rejected_without_retry(fake_iamport, settings, caplog):
    settings.IAMPORT_API_SECRET = "wrong"
    with caplog.at_level(logging.ERROR, logger="payments.gateway"), pytest.raises(GatewayRejected) as raised:
        get_gateway().find(imp_uid="imp_000000000000")
    assert raised.value.code == 401 and not isinstance(raised.value, PaymentNotFound)
    assert token_requests(fake_iamport) == 1 and len(fake_iamport.request_log) == 1
    assert "find" in caplog.text and "imp_000000000000" in caplog.text


def test_a_token_near_its_expiry_is_renewed_before_use(gateway, fake_iamport, monkeypatch):
    imp_uid = checkout(fake_iamport, "tkt_t5", 1000)
    gateway.find(imp_uid=imp_uid)
    later = time.monotonic() + 29 * 60 + 1  # inside the refresh margin of a 30-minute token
    monkeypatch.setattr(gateway_module, "time", SimpleNamespace(monotonic=lambda: later))
    gateway.find(imp_uid=imp_uid)
    assert token_requests(fake_iamport) == 2
    assert [r["status"] for r in fake_iamport.request_log] == [200, 200, 200, 200]


# --- failures --------------------------------------------------------------------------


def test_stalled_gateway_times_out_quickly(fake_iamport, settings):
    settings.IAMPORT_READ_TIMEOUT = 0.3
    fake_iamport.set_stall(3)
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable) as raised:
        get_gateway().find(imp_uid="imp_000000000000")
    assert time.monotonic() - started < 1.5
    assert "Timeout" in raised.value.message


def test_stall_after_the_token_is_cached(gateway, fake_iamport, settings):
    imp_uid = checkout(fake_iamport, "tkt_s1", 1000)
    settings.IAMPORT_READ_TIMEOUT = 0.3
    gateway = get_gateway()
    gateway.find(imp_uid=imp_uid)
    fake_iamport.set_stall(3, count=1, match="/payments/")
    with pytest.raises(GatewayUnavailable):
        gateway.find(imp_uid=imp_uid)
    assert gateway.find(imp_uid=imp_uid).status == "paid"  # the next call goes through


def test_connection_refused_is_unavailable(fake_iamport, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    settings.IAMPORT_API_URL = f"http://127.0.0.1:{port}/"
    with pytest.raises(GatewayUnavailable) as raised:
        get_gateway().find(imp_uid="imp_000000000000")
    assert "ConnectionError" in raised.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_are_unavailable(gateway, fake_iamport, status):
    fake_iamport.add_fault(status=status, match="/payments/")
    with pytest.raises(GatewayUnavailable) as raised:
        gateway.find(imp_uid="imp_000000000000")
    assert raised.value.code == status


@pytest.mark.parametrize("status", [400, 403, 405])
def test_other_client_errors_are_rejected(gateway, fake_iamport, status):
    fake_iamport.add_fault(status=status, match="/payments/")
    with pytest.raises(GatewayRejected) as raised:
        gateway.find(imp_uid="imp_000000000000")
    assert raised.value.code == status and not isinstance(raised.value, PaymentNotFound)


@pytest.mark.parametrize(
    "body",
    [
        "<html>502 Bad Gateway</html>",  # not JSON
        "{}",  # no code
        "[]",  # not an object
        '{"code": 0, "message": null, "response": null}',  # no payment
        '{"code": 0, "response": {"imp_uid": "imp_000000000000"}}',  # a partial payment
        '{"code": 0, "response": {"imp_uid": "imp_000000000000", "merchant_uid": "m", "amount": "1000",'
        ' "currency": "KRW", "status": "paid"}}',  # a string amount
        '{"code": 0, "response": {"imp_uid": "imp_999999999999", "merchant_uid": "m", "amount": 1000,'
        ' "currency": "KRW", "status": "paid"}}',  # another payment
    ],
)
def test_malformed_answers_are_unavailable(gateway, fake_iamport, body):
    fake_iamport.add_fault(status=200, body=body, match="/payments/")
    with pytest.raises(GatewayUnavailable) as raised:
        gateway.find(imp_uid="imp_000000000000")
    assert "malformed" in raised.value.message or "JSONDecodeError" in raised.value.message


def test_malformed_token_answer_is_unavailable(gateway, fake_iamport):
    fake_iamport.add_fault(status=200, body='{"code": 0, "response": {"access_token": null}}', match="getToken")
    with pytest.raises(GatewayUnavailable):
        gateway.find(imp_uid="imp_000000000000")


def test_every_error_is_a_gateway_error_and_is_logged(gateway, fake_iamport, caplog):
    fake_iamport.add_fault(status=503, match="/payments/")
    with caplog.at_level(logging.WARNING, logger="payments.gateway"), pytest.raises(GatewayError):
        gateway.find(imp_uid="imp_000000000000")
    [record] = caplog.records
    assert "find" in record.getMessage() and "imp_000000000000" in record.getMessage() and "503" in record.getMessage()


# --- cancel ----------------------------------------------------------------------------


def test_partial_cancel_with_the_right_checksum(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c1", 10000)
    payment = gateway.cancel(imp_uid=imp_uid, reason="관람 취소", amount=3000, checksum=10000)
    assert (payment.status, payment.cancel_amount, payment.cancellable_amount) == ("paid", 3000, 7000)
    assert payment.cancelled_at is not None
    assert payment.raw["cancel_history"][0]["amount"] == 3000
    rest = gateway.cancel(imp_uid=imp_uid, reason="나머지", amount=7000, checksum=payment.cancellable_amount)
    assert (rest.status, rest.cancel_amount) == ("cancelled", 10000)


def test_wrong_checksum_is_rejected_and_changes_nothing(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c2", 10000)
    gateway.cancel(imp_uid=imp_uid, reason="first", amount=2000)
    before = gateway.find(imp_uid=imp_uid)
    with pytest.raises(GatewayRejected) as raised:
        gateway.cancel(imp_uid=imp_uid, reason="stale", amount=2000, checksum=10000)
    assert raised.value.code == 1 and "checksum" in raised.value.message
    after = gateway.find(imp_uid=imp_uid)
    assert after.raw == before.raw and after.cancel_amount == 2000


def test_full_cancel_and_cancel_again(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c3", 10000)
    payment = gateway.cancel(imp_uid=imp_uid, reason="전액 환불")
    assert (payment.status, payment.cancel_amount) == ("cancelled", 10000)
    with pytest.raises(GatewayRejected) as raised:
        gateway.cancel(imp_uid=imp_uid, reason="again")
    assert raised.value.message == "이미 전액취소된 주문입니다."


def test_cancel_above_the_balance_is_rejected(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c4", 10000)
    with pytest.raises(GatewayRejected):
        gateway.cancel(imp_uid=imp_uid, reason="r", amount=10001)
    assert fake_iamport.payments[imp_uid]["cancel_amount"] == 0


def test_cancel_unknown_payment_is_not_found(gateway):
    with pytest.raises(PaymentNotFound) as raised:
        gateway.cancel(imp_uid="imp_000000000000", reason="r")
    assert raised.value.code == 1


@pytest.mark.parametrize(("amount", "checksum"), [(0, None), (-1, None), (True, None), ("100", None), (100, -1)])
def test_cancel_rejects_bad_amounts_before_any_request(gateway, fake_iamport, amount, checksum):
    # amount=0 would be a FULL refund at I'mport: never send it for a partial one.
    with pytest.raises(ValueError):
        gateway.cancel(imp_uid="imp_000000000000", reason="r", amount=amount, checksum=checksum)
    assert fake_iamport.request_log == []


def test_vbank_refund_needs_the_refund_account(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c5", 20000, outcome="vbank")
    fake_iamport.deposit(imp_uid)
    with pytest.raises(GatewayRejected):
        gateway.cancel(imp_uid=imp_uid, reason="r")
    payment = gateway.cancel(
        imp_uid=imp_uid, reason="r", refund_holder="홍길동", refund_bank="04", refund_account="12345678901234"
    )
    assert payment.status == "cancelled"


def test_revoke_vbank(gateway, fake_iamport):
    imp_uid = checkout(fake_iamport, "tkt_c6", 20000, outcome="vbank")
    assert gateway.revoke_vbank(imp_uid=imp_uid).status == "cancelled"
    with pytest.raises(GatewayRejected) as raised:
        gateway.revoke_vbank(imp_uid=imp_uid)
    assert raised.value.code == 400
    with pytest.raises(PaymentNotFound):
        gateway.revoke_vbank(imp_uid="imp_000000000000")


def test_timed_out_cancel_is_not_retried(gateway, fake_iamport, settings):
    imp_uid = checkout(fake_iamport, "tkt_c7", 10000)
    settings.IAMPORT_READ_TIMEOUT = 0.3
    gateway = get_gateway()
    gateway.find(imp_uid=imp_uid)
    fake_iamport.set_stall(1, match="/payments/cancel")
    with pytest.raises(GatewayUnavailable):
        gateway.cancel(imp_uid=imp_uid, reason="r", amount=1000)
    assert len(fake_iamport.requests_to("/payments/cancel")) <= 1
    time.sleep(0.8)  # the stalled cancel completes on the server anyway: re-sync, never assume
    assert len(fake_iamport.requests_to("/payments/cancel")) == 1
    assert gateway.find(imp_uid=imp_uid).cancel_amount == 1000


def test_credentials_in_the_fixture_match_the_fake(fake_iamport, settings):
    assert (settings.IAMPORT_API_KEY, settings.IAMPORT_API_SECRET) == (FAKE_KEY, FAKE_SECRET)
    assert fake_iamport.sdk_url == settings.IAMPORT_JS_SDK_URL
    assert settings.IAMPORT_JS_SDK_URL.endswith("/__fake__/iamport.js")
