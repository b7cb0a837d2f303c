"""The fake I'mport server, driven by the real iamport-rest-client over HTTP.

Each test follows a row of specs/iamport-v1.md §2: the client must see exactly the
exceptions and values it would see from the real API.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests
from iamport import Iamport

from payments.fake_iamport import FakeIamport
from payments.fake_iamport.store import KST
from payments.testing import FAKE_KEY, FAKE_SECRET


def pay(fake: FakeIamport, merchant_uid: str, amount: int, outcome: str = "approve", **params) -> dict:
    """Run a checkout through the control endpoint; returns the SDK's rsp."""
    body = {"merchant_uid": merchant_uid, "amount": amount, "outcome": outcome, **params}
    response = requests.post(f"{fake.url}__fake__/checkout", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def raw_get(fake: FakeIamport, path: str, **headers) -> requests.Response:
    return requests.get(f"{fake.url}{path}", headers=headers, timeout=5)


def token(fake: FakeIamport) -> str:
    response = requests.post(f"{fake.url}users/getToken", json={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    return response.json()["response"]["access_token"]


# --- envelope and tokens (§2.1, §2.3) ---------------------------------------------


def test_envelope_and_content_type(fake_iamport):
    response = requests.post(f"{fake_iamport.url}users/getToken", json={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    body = response.json()
    assert body["code"] == 0 and body["message"] is None
    assert set(body["response"]) == {"access_token", "now", "expired_at"}
    assert body["response"]["expired_at"] - body["response"]["now"] == 30 * 60


def test_get_token_accepts_form_bodies_and_reuses_the_token(fake_iamport):
    first = token(fake_iamport)
    form = requests.post(f"{fake_iamport.url}users/getToken", data={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    assert form.json()["response"]["access_token"] == first


def test_token_is_extended_when_nearly_expired_and_replaced_after_expiry(fake_iamport):
    first = requests.post(f"{fake_iamport.url}users/getToken", json={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    expires = first.json()["response"]["expired_at"]
    fake_iamport.advance_clock(30 * 60 - 30)  # 30 s left
    second = requests.post(f"{fake_iamport.url}users/getToken", json={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    assert second.json()["response"]["access_token"] == first.json()["response"]["access_token"]
    assert second.json()["response"]["expired_at"] == expires + 5 * 60
    fake_iamport.advance_clock(6 * 60)
    third = requests.post(f"{fake_iamport.url}users/getToken", json={"imp_key": FAKE_KEY, "imp_secret": FAKE_SECRET})
    assert third.json()["response"]["access_token"] != first.json()["response"]["access_token"]


@pytest.mark.parametrize(
    ("key", "secret"), [("wrong", FAKE_SECRET), (FAKE_KEY, "wrong"), ("", ""), (None, None)], ids=str
)
def test_get_token_with_bad_or_missing_credentials_is_http_401(fake_iamport, key, secret):
    client = Iamport(key, secret, imp_url=fake_iamport.url)
    with pytest.raises(Iamport.HttpError) as raised:
        client.find(imp_uid="imp_000000000000")
    assert (raised.value.code, raised.value.reason) == (401, "Unauthorized")


@pytest.mark.parametrize("scheme", ["raw", "bearer", "legacy"])
def test_token_accepted_raw_as_bearer_and_in_the_legacy_header(fake_iamport, scheme):
    value = token(fake_iamport)
    headers = {
        "raw": {"Authorization": value},
        "bearer": {"Authorization": f"Bearer {value}"},
        "legacy": {"X-ImpTokenHeader": value},
    }[scheme]
    response = raw_get(fake_iamport, "payments/imp_000000000000", **headers)
    assert response.status_code == 404  # authenticated, then not found


@pytest.mark.parametrize("header", [None, "nonsense", "Bearer nonsense"])
def test_missing_or_invalid_token_is_401_with_envelope(fake_iamport, header):
    response = raw_get(fake_iamport, "payments/imp_000000000000", **({"Authorization": header} if header else {}))
    assert response.status_code == 401
    assert response.json() == {"code": -1, "message": "Unauthorized", "response": None}


def test_expired_token_is_401_for_the_client(fake_iamport, iamport):
    value = token(fake_iamport)
    fake_iamport.advance_clock(31 * 60)
    assert raw_get(fake_iamport, "payments/imp_000000000000", Authorization=value).status_code == 401
    # The real client fetches a token per call, so it never notices.
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.find(imp_uid="imp_000000000000")
    assert raised.value.code == 404


def test_tokens_expire_control(fake_iamport, control):
    value = token(fake_iamport)
    assert control("tokens/expire") == (200, {"expired": True})
    assert raw_get(fake_iamport, "payments/imp_000000000000", Authorization=value).status_code == 401


# --- lookups (§2.4) ---------------------------------------------------------------


def test_find_by_imp_uid_returns_the_full_payment_object(fake_iamport, iamport):
    rsp = pay(
        fake_iamport,
        "tkt_find",
        15000,
        name="공연 티켓",
        buyer_email="a@example.com",
        custom_data={"reservation": 7},
        pay_method="card",
    )["rsp"]
    payment = iamport.find_by_imp_uid(rsp["imp_uid"])
    assert payment["imp_uid"].startswith("imp_") and len(payment["imp_uid"]) == 16
    assert payment["imp_uid"][4:].isdigit()
    assert payment["merchant_uid"] == "tkt_find"
    assert payment["amount"] == 15000 and isinstance(payment["amount"], int)
    assert payment["cancel_amount"] == 0
    assert payment["currency"] == "KRW"
    assert payment["status"] == "paid"
    assert payment["sandbox"] is True
    assert payment["name"] == "공연 티켓"
    assert json.loads(payment["custom_data"]) == {"reservation": 7}
    assert isinstance(payment["paid_at"], int) and payment["paid_at"] > 0
    assert payment["failed_at"] == 0 and payment["cancelled_at"] == 0
    assert payment["cancel_history"] == []
    assert iamport.is_paid(15000, imp_uid=rsp["imp_uid"])
    assert iamport.find(imp_uid=rsp["imp_uid"]) == payment


def test_find_by_merchant_uid_returns_the_latest_attempt(fake_iamport, iamport):
    failed = pay(fake_iamport, "tkt_retry", 1000, outcome="decline")["rsp"]
    fake_iamport.advance_clock(1)
    paid = pay(fake_iamport, "tkt_retry", 1000)["rsp"]
    assert iamport.find_by_merchant_uid("tkt_retry")["imp_uid"] == paid["imp_uid"]
    assert iamport.find(merchant_uid="tkt_retry", imp_uid="ignored")["imp_uid"] == paid["imp_uid"]
    # find/{merchant_uid}/{status} (unreleased client master) and ?sorting=
    auth = {"Authorization": token(fake_iamport)}
    by_status = raw_get(fake_iamport, "payments/find/tkt_retry/failed", **auth).json()["response"]
    assert by_status["imp_uid"] == failed["imp_uid"]
    oldest = raw_get(fake_iamport, "payments/find/tkt_retry?sorting=started", **auth).json()["response"]
    assert oldest["imp_uid"] == failed["imp_uid"]
    assert raw_get(fake_iamport, "payments/find/tkt_retry/weird", **auth).status_code == 400


@pytest.mark.parametrize("call", ["imp_uid", "merchant_uid"])
def test_unknown_payment_is_http_404(fake_iamport, iamport, call):
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.find(**{call: "nope_000"})
    assert (raised.value.code, raised.value.reason) == (404, "Not Found")
    response = raw_get(fake_iamport, "payments/nope_000", Authorization=token(fake_iamport))
    assert response.json() == {"code": -1, "message": "존재하지 않는 결제정보입니다.", "response": None}


def test_unencoded_path_parameters_reach_the_wrong_route(fake_iamport, iamport):
    # Documents the client bug the gateway guards against (spec §1.1).
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.find_by_merchant_uid("a/b c")
    assert raised.value.code == 400  # routed to find/{uid}/{status} with status "b c"
    assert fake_iamport.requests_to("/payments/find/a/b")


def test_find_by_status_is_broken_in_the_client_but_served(fake_iamport, iamport):
    with pytest.raises(TypeError):
        iamport.find_by_status("paid")  # issue #57
    for n in range(3):
        pay(fake_iamport, f"tkt_list_{n}", 1000 + n)
    pay(fake_iamport, "tkt_list_failed", 1000, outcome="decline")
    auth = {"Authorization": token(fake_iamport)}
    page = raw_get(fake_iamport, "payments/status/paid?limit=2", **auth).json()["response"]
    assert (page["total"], page["previous"], page["next"], len(page["list"])) == (3, 0, 2, 2)
    page2 = raw_get(fake_iamport, "payments/status/paid?limit=2&page=2", **auth).json()["response"]
    assert (page2["previous"], page2["next"], len(page2["list"])) == (1, 0, 1)
    assert raw_get(fake_iamport, "payments/status/all", **auth).json()["response"]["total"] == 4
    bad = raw_get(fake_iamport, "payments/status/bogus", **auth)
    assert bad.status_code == 400
    assert bad.json()["message"] == "지원되지 않는 상태값입니다."


def test_certifications_and_customers_are_unknown(fake_iamport, iamport, control):
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.find_certification("imp_000000000000")
    assert raised.value.code == 404
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.cancel_certification("imp_000000000000")
    assert raised.value.code == 404
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.customer_get("cust_1")
    assert raised.value.code == 404
    control("settings", {"customer_not_found": "response_error"})
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.customer_get("cust_1")
    assert raised.value.code == 1


def test_unknown_api_path_is_404(fake_iamport, iamport):
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.pay_again(customer_uid="c", merchant_uid="m", amount=1)
    assert raised.value.code == 404


# --- prepare (§2.5) ---------------------------------------------------------------


def test_prepare_register_read_back_and_duplicate(fake_iamport, iamport):
    assert iamport.prepare("tkt_prep", 30000) == {"merchant_uid": "tkt_prep", "amount": 30000, "currency": "KRW"}
    assert iamport.prepare_validate("tkt_prep", 30000) is True
    assert iamport.prepare_validate("tkt_prep", 29999) is False
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.prepare("tkt_prep", 30000)
    assert raised.value.code == 1
    assert raised.value.message == "결제정보 사전등록에 실패하였습니다(이미 등록된 merchant_uid입니다)."


def test_prepare_validate_of_an_unregistered_merchant_uid_is_http_404(fake_iamport, iamport):
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.prepare_validate("tkt_none", 1000)
    assert raised.value.code == 404
    response = raw_get(fake_iamport, "payments/prepare/tkt_none", Authorization=token(fake_iamport))
    assert response.json()["message"] == "사전등록된 결제정보가 존재하지 않습니다."


def test_prepare_put_changes_the_amount(fake_iamport, iamport):
    iamport.prepare("tkt_put", 1000)
    auth = {"Authorization": token(fake_iamport)}
    url = f"{fake_iamport.url}payments/prepare"
    changed = requests.put(url, json={"merchant_uid": "tkt_put", "amount": 2000}, headers=auth, timeout=5)
    assert changed.json()["response"]["amount"] == 2000
    assert iamport.prepare_validate("tkt_put", 2000)
    missing = requests.put(url, json={"merchant_uid": "tkt_nope", "amount": 2000}, headers=auth, timeout=5)
    assert missing.status_code == 404


def test_checkout_with_another_amount_than_prepared_fails_at_once(fake_iamport, iamport, webhook_receiver):
    iamport.prepare("tkt_tamper", 50000)
    result = pay(fake_iamport, "tkt_tamper", 100, notice_url=webhook_receiver.url, m_redirect_url="http://shop/done")
    rsp = result["rsp"]
    assert rsp["imp_uid"] is None
    assert rsp["error_code"] and "금액" in rsp["error_msg"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(result["redirect_url"]).query)
    assert query["imp_success"] == ["false"] and "imp_uid" not in query
    assert query["merchant_uid"] == ["tkt_tamper"]
    assert fake_iamport.payments == {}  # no payment was created
    with pytest.raises(Iamport.HttpError):
        iamport.find_by_merchant_uid("tkt_tamper")
    assert pay(fake_iamport, "tkt_tamper", 50000)["rsp"]["status"] == "paid"


def test_checkout_of_an_already_paid_merchant_uid_is_rejected(fake_iamport, iamport):
    paid = pay(fake_iamport, "tkt_twice", 1000)["rsp"]
    again = pay(fake_iamport, "tkt_twice", 1000)["rsp"]
    assert again["imp_uid"] is None and again["error_code"]
    assert iamport.find_by_merchant_uid("tkt_twice")["imp_uid"] == paid["imp_uid"]
    assert len(fake_iamport.payments) == 1


def test_two_windows_for_one_merchant_uid_only_one_pays(fake_iamport):
    first = fake_iamport.start_checkout({"merchant_uid": "tkt_race", "amount": 1000})
    second = fake_iamport.start_checkout({"merchant_uid": "tkt_race", "amount": 1000})
    assert fake_iamport.complete_checkout(first.id, "approve").rsp["status"] == "paid"
    late = fake_iamport.complete_checkout(second.id, "approve").rsp
    assert late["status"] == "failed" and late["error_code"]


@pytest.mark.parametrize(
    "params",
    [{"amount": "1000"}, {"amount": 0}, {"amount": 10.5}, {"merchant_uid": "x" * 41}, {"merchant_uid": None}],
    ids=["string-amount", "zero", "fraction", "long-uid", "no-uid"],
)
def test_checkout_with_unusable_params_fails_like_the_sdk(fake_iamport, params):
    session = fake_iamport.start_checkout({"merchant_uid": "tkt_params", "amount": 1000, **params})
    assert session.rsp["imp_uid"] is None and session.rsp["error_code"]


# --- checkout outcomes and webhooks (§2.7, §3) ---------------------------------------


def test_card_approval_is_paid_and_notified(fake_iamport, iamport, webhook_receiver):
    result = pay(
        fake_iamport, "tkt_card", 42000, pay_method="card", notice_url=webhook_receiver.url, m_redirect_url="http://s/r"
    )
    rsp = result["rsp"]
    assert {k: rsp[k] for k in ("merchant_uid", "paid_amount", "status", "pay_method")} == {
        "merchant_uid": "tkt_card",
        "paid_amount": 42000,
        "status": "paid",
        "pay_method": "card",
    }
    assert "error_code" not in rsp and "success" not in rsp
    assert result["redirect_url"] == f"http://s/r?imp_uid={rsp['imp_uid']}&merchant_uid=tkt_card&imp_success=true"
    [hook] = webhook_receiver.wait_for(1)
    assert hook.content_type == "application/json"
    assert hook.data == {"imp_uid": rsp["imp_uid"], "merchant_uid": "tkt_card", "status": "paid"}
    assert iamport.find(imp_uid=rsp["imp_uid"])["card_name"]


def test_bank_transfer_approval(fake_iamport, iamport):
    rsp = pay(fake_iamport, "tkt_trans", 1000, pay_method="trans")["rsp"]
    payment = iamport.find(imp_uid=rsp["imp_uid"])
    assert (payment["status"], payment["pay_method"], payment["bank_name"]) == ("paid", "trans", "KB국민은행")


def test_decline_is_failed_without_webhook(fake_iamport, iamport, webhook_receiver):
    result = pay(
        fake_iamport, "tkt_decl", 1000, outcome="decline", notice_url=webhook_receiver.url, m_redirect_url="/r"
    )
    rsp = result["rsp"]
    assert rsp["imp_uid"] and rsp["error_code"] and rsp["error_msg"] and rsp["status"] == "failed"
    assert "imp_success=false" in result["redirect_url"] and "error_code=" in result["redirect_url"]
    payment = iamport.find(imp_uid=rsp["imp_uid"])
    assert payment["status"] == "failed" and payment["failed_at"] > 0 and payment["fail_reason"]
    assert fake_iamport.wait_for_webhooks()
    assert webhook_receiver.received == [] and fake_iamport.webhook_log == []


def test_abandoned_window_leaves_a_ready_payment(fake_iamport, iamport):
    rsp = pay(fake_iamport, "tkt_gone", 1000, outcome="abandon")["rsp"]
    assert rsp["error_code"]
    assert iamport.find(imp_uid=rsp["imp_uid"])["status"] == "ready"
    assert fake_iamport.wait_for_webhooks() and fake_iamport.webhook_log == []


def test_vbank_issue_then_deposit(fake_iamport, iamport, webhook_receiver, control):
    rsp = pay(fake_iamport, "tkt_vb", 77000, outcome="vbank", notice_url=webhook_receiver.url)["rsp"]
    assert rsp["status"] == "ready" and "error_code" not in rsp
    assert rsp["vbank_name"] == "국민은행" and rsp["vbank_num"] and rsp["vbank_holder"]
    payment = iamport.find(imp_uid=rsp["imp_uid"])
    assert (payment["status"], payment["pay_method"], payment["paid_at"]) == ("ready", "vbank", 0)
    assert payment["vbank_date"] - payment["vbank_issued_at"] == 3 * 24 * 3600
    [issued] = webhook_receiver.wait_for(1)
    assert issued.data["status"] == "ready"

    status, paid = control("vbank/deposit", {"imp_uid": rsp["imp_uid"]})
    assert status == 200 and paid["status"] == "paid" and paid["paid_at"] > 0
    hooks = webhook_receiver.wait_for(2)
    assert hooks[1].data == {"imp_uid": rsp["imp_uid"], "merchant_uid": "tkt_vb", "status": "paid"}
    assert iamport.is_paid(77000, imp_uid=rsp["imp_uid"])
    assert control("vbank/deposit", {"imp_uid": rsp["imp_uid"]})[0] == 400  # not twice


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ("202612311530", dt.datetime(2026, 12, 31, 15, 30, tzinfo=KST)),
        ("20261231", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=KST)),
        (1893423600, dt.datetime.fromtimestamp(1893423600, KST)),
    ],
)
def test_vbank_due_is_honoured(fake_iamport, iamport, due, expected):
    rsp = pay(fake_iamport, "tkt_due", 1000, outcome="vbank", vbank_due=due)["rsp"]
    assert rsp["vbank_date"] == int(expected.timestamp())


def test_revoke_vbank(fake_iamport, iamport):
    rsp = pay(fake_iamport, "tkt_revoke", 1000, outcome="vbank")["rsp"]
    revoked = iamport.revoke_vbank_by_imp_uid(rsp["imp_uid"])
    assert revoked["status"] == "cancelled" and revoked["cancelled_at"] > 0
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.revoke_vbank_by_imp_uid(rsp["imp_uid"])  # no longer ready
    assert raised.value.code == 400
    card = pay(fake_iamport, "tkt_revoke_card", 1000)["rsp"]
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.revoke_vbank_by_imp_uid(card["imp_uid"])
    assert raised.value.code == 400
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.revoke_vbank_by_imp_uid("imp_000000000000")
    assert raised.value.code == 404


# --- cancel (§2.6) ----------------------------------------------------------------


def test_partial_cancel_with_the_right_checksum(fake_iamport, iamport, webhook_receiver):
    imp_uid = pay(fake_iamport, "tkt_part", 10000, notice_url=webhook_receiver.url)["rsp"]["imp_uid"]
    webhook_receiver.wait_for(1)
    payment = iamport.cancel("관람 취소", imp_uid=imp_uid, amount=3000, checksum=10000)
    assert (payment["status"], payment["cancel_amount"]) == ("paid", 3000)
    assert payment["cancel_reason"] == "관람 취소" and payment["cancelled_at"] > 0
    [entry] = payment["cancel_history"]
    assert entry["amount"] == 3000 and entry["reason"] == "관람 취소" and entry["cancellation_id"]
    assert set(entry) == {"pg_tid", "amount", "cancelled_at", "reason", "cancellation_id", "receipt_url"}
    second = iamport.cancel("나머지", imp_uid=imp_uid, amount=7000, checksum=7000)
    assert (second["status"], second["cancel_amount"], len(second["cancel_history"])) == ("cancelled", 10000, 2)
    assert fake_iamport.wait_for_webhooks()
    assert len(webhook_receiver.received) == 1  # API cancels send no webhook by default


def test_wrong_checksum_is_refused_and_executes_nothing(fake_iamport, iamport):
    imp_uid = pay(fake_iamport, "tkt_sum", 10000)["rsp"]["imp_uid"]
    iamport.cancel("first", imp_uid=imp_uid, amount=2000, checksum=10000)
    before = iamport.find(imp_uid=imp_uid)
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.cancel("stale", imp_uid=imp_uid, amount=2000, checksum=10000)  # balance is 8000
    assert raised.value.code == 1 and "checksum" in raised.value.message
    assert iamport.find(imp_uid=imp_uid) == before


def test_partial_cancel_status_is_configurable(fake_iamport, iamport, control):
    control("settings", {"partial_cancel_status": "cancelled"})
    imp_uid = pay(fake_iamport, "tkt_pcs", 10000)["rsp"]["imp_uid"]
    assert iamport.cancel("r", imp_uid=imp_uid, amount=1000)["status"] == "cancelled"


@pytest.mark.parametrize("amount", [None, 0])
def test_missing_or_zero_amount_cancels_everything_left(fake_iamport, iamport, amount):
    imp_uid = pay(fake_iamport, "tkt_full", 9000)["rsp"]["imp_uid"]
    iamport.cancel("part", imp_uid=imp_uid, amount=1000)
    extra = {} if amount is None else {"amount": amount}
    payment = iamport.cancel("rest", imp_uid=imp_uid, **extra)
    assert (payment["status"], payment["cancel_amount"]) == ("cancelled", 9000)
    assert payment["cancel_history"][-1]["amount"] == 8000
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.cancel("again", imp_uid=imp_uid)
    assert (raised.value.code, raised.value.message) == (1, "이미 전액취소된 주문입니다.")


def test_cancel_above_the_balance_is_refused(fake_iamport, iamport):
    imp_uid = pay(fake_iamport, "tkt_over", 5000)["rsp"]["imp_uid"]
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.cancel("too much", imp_uid=imp_uid, amount=5001)
    assert raised.value.code == 1
    assert iamport.find(imp_uid=imp_uid)["cancel_amount"] == 0


def test_cancel_of_an_unknown_payment_is_response_error_1(fake_iamport, iamport):
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.cancel("r", imp_uid="imp_000000000000")
    assert (raised.value.code, raised.value.message) == (1, "취소할 결제건이 존재하지 않습니다.")


def test_cancel_imp_uid_has_priority_over_merchant_uid(fake_iamport, iamport):
    pay(fake_iamport, "tkt_prio", 5000)
    with pytest.raises(Iamport.ResponseError):
        iamport.cancel("r", imp_uid="imp_000000000000", merchant_uid="tkt_prio")
    by_merchant = iamport.cancel("r", merchant_uid="tkt_prio", amount=1000)
    assert by_merchant["cancel_amount"] == 1000


def test_cancel_of_unpaid_payments_is_refused(fake_iamport, iamport):
    failed = pay(fake_iamport, "tkt_unpaid", 5000, outcome="decline")["rsp"]["imp_uid"]
    with pytest.raises(Iamport.ResponseError):
        iamport.cancel("r", imp_uid=failed)


def test_vbank_refund_needs_the_refund_account(fake_iamport, iamport):
    imp_uid = pay(fake_iamport, "tkt_vbref", 20000, outcome="vbank")["rsp"]["imp_uid"]
    with pytest.raises(Iamport.ResponseError):
        iamport.cancel("not yet paid", imp_uid=imp_uid)  # issued, not deposited: revoke instead
    fake_iamport.deposit(imp_uid)
    with pytest.raises(Iamport.ResponseError) as raised:
        iamport.cancel("refund", imp_uid=imp_uid, refund_holder="홍길동", refund_bank="04")
    assert "refund_account" in raised.value.message
    assert iamport.find(imp_uid=imp_uid)["cancel_amount"] == 0
    payment = iamport.cancel(
        "refund", imp_uid=imp_uid, refund_holder="홍길동", refund_bank="04", refund_account="12345678901234"
    )
    assert payment["status"] == "cancelled"


def test_cancel_with_enable_webhook_notifies_cancelled(fake_iamport, iamport, webhook_receiver):
    imp_uid = pay(fake_iamport, "tkt_cwh", 5000, notice_url=webhook_receiver.url)["rsp"]["imp_uid"]
    payment = iamport.cancel("r", imp_uid=imp_uid, amount=1000, enable_webhook=True)
    # The payment's own webhook and the cancellation's are sent independently, in
    # either order (as I'mport's are).
    [cancelled] = [hook for hook in webhook_receiver.wait_for(2) if hook.data["status"] == "cancelled"]
    assert cancelled.data == {
        "imp_uid": imp_uid,
        "merchant_uid": "tkt_cwh",
        "status": "cancelled",
        "cancellation_id": payment["cancel_history"][0]["cancellation_id"],
    }


def test_console_cancel_always_notifies(fake_iamport, iamport, webhook_receiver, control):
    imp_uid = pay(fake_iamport, "tkt_console", 5000, notice_url=webhook_receiver.url)["rsp"]["imp_uid"]
    status, payment = control("console/cancel", {"imp_uid": imp_uid, "amount": 2000})
    assert status == 200 and payment["cancel_amount"] == 2000
    [cancelled] = [hook for hook in webhook_receiver.wait_for(2) if hook.data["status"] == "cancelled"]
    assert cancelled.data["cancellation_id"]
    assert control("console/cancel", {"imp_uid": imp_uid, "amount": 9000})[0] == 400


# --- webhook delivery knobs (§2.7) ---------------------------------------------------


def test_webhook_goes_to_the_console_url_without_notice_url(fake_iamport, webhook_receiver, control):
    control("settings", {"notice_url": webhook_receiver.url})
    pay(fake_iamport, "tkt_console_url", 1000)
    assert webhook_receiver.wait_for(1)[0].data["status"] == "paid"


def test_webhook_in_form_format(fake_iamport, webhook_receiver, control):
    assert control("webhooks/config", {"format": "form"})[1]["format"] == "form"
    imp_uid = pay(fake_iamport, "tkt_form", 1000, notice_url=webhook_receiver.url)["rsp"]["imp_uid"]
    [hook] = webhook_receiver.wait_for(1)
    assert hook.content_type == "application/x-www-form-urlencoded"
    assert hook.data == {"imp_uid": imp_uid, "merchant_uid": "tkt_form", "status": "paid"}


def test_webhook_delay(fake_iamport, webhook_receiver, control):
    control("webhooks/config", {"delay_seconds": 0.4})
    started = time.monotonic()
    pay(fake_iamport, "tkt_delay", 1000, notice_url=webhook_receiver.url)
    assert time.monotonic() - started < 0.4  # the browser does not wait for the webhook
    [hook] = webhook_receiver.wait_for(1)
    assert hook.at - started >= 0.4


def test_webhook_duplicate(fake_iamport, webhook_receiver, control):
    control("webhooks/config", {"duplicate": True})
    pay(fake_iamport, "tkt_dup", 1000, notice_url=webhook_receiver.url)
    first, second = webhook_receiver.wait_for(2)
    assert first.data == second.data


def test_webhook_drop(fake_iamport, webhook_receiver, control):
    control("webhooks/config", {"drop": True})
    pay(fake_iamport, "tkt_drop", 1000, notice_url=webhook_receiver.url)
    assert fake_iamport.wait_for_webhooks()
    assert webhook_receiver.received == []
    [entry] = control("webhooks/log", method="GET")[1]["log"]
    assert entry["outcome"] == "dropped" and entry["body"]["status"] == "paid"


def test_webhook_retry_on_5xx_until_200(fake_iamport, webhook_receiver, control):
    control("webhooks/config", {"retry_on_5xx": True, "retry_interval": 0.01})
    webhook_receiver.statuses = [500, 503]
    pay(fake_iamport, "tkt_retry5", 1000, notice_url=webhook_receiver.url)
    webhook_receiver.wait_for(3)
    assert fake_iamport.wait_for_webhooks()
    log = control("webhooks/log", method="GET")[1]["log"]
    assert [(e["attempt"], e["status_code"]) for e in log] == [(1, 500), (2, 503), (3, 200)]


def test_webhook_retries_at_most_five_times(fake_iamport, webhook_receiver, control):
    control("webhooks/config", {"retry_on_5xx": True, "retry_interval": 0.01})
    webhook_receiver.statuses = [500] * 10
    pay(fake_iamport, "tkt_retry_max", 1000, notice_url=webhook_receiver.url)
    assert fake_iamport.wait_for_webhooks()
    assert len(webhook_receiver.received) == 6  # one delivery + five retries


def test_webhook_without_retry_is_sent_once(fake_iamport, webhook_receiver):
    webhook_receiver.statuses = [500]
    pay(fake_iamport, "tkt_once", 1000, notice_url=webhook_receiver.url)
    assert fake_iamport.wait_for_webhooks()
    assert len(webhook_receiver.received) == 1
    assert fake_iamport.webhook_log[0]["outcome"] == "failed"


def test_webhook_resend_sends_the_current_status(fake_iamport, webhook_receiver, control):
    imp_uid = pay(fake_iamport, "tkt_resend", 1000, notice_url=webhook_receiver.url)["rsp"]["imp_uid"]
    webhook_receiver.wait_for(1)
    assert control("webhooks/resend", {"imp_uid": imp_uid})[0] == 200
    assert webhook_receiver.wait_for(2)[1].data["status"] == "paid"
    assert control("webhooks/resend", {"imp_uid": "imp_000000000000"})[0] == 404


def test_webhook_config_rejects_unknown_settings(fake_iamport, control):
    assert control("webhooks/config", {"format": "xml"})[0] == 400
    assert control("webhooks/config", {"bogus": 1})[0] == 400


# --- faults, clock, reset, debugging ---------------------------------------------------


def test_fault_knob_answers_raw_responses(fake_iamport, iamport, control):
    control("fault", {"status": 500, "match": "/payments/"})
    with pytest.raises(Iamport.HttpError) as raised:
        iamport.find(imp_uid="imp_000000000000")
    assert (raised.value.code, raised.value.reason) == (500, "Internal Server Error")
    control("fault", {"status": 200, "body": "<html>gateway</html>", "content_type": "text/html"})
    with pytest.raises(requests.exceptions.JSONDecodeError):
        iamport.find(imp_uid="imp_000000000000")
    control("fault", {"status": 200, "body": "{}"})
    with pytest.raises(KeyError):
        iamport.find(imp_uid="imp_000000000000")


def test_stall_knob_delays_api_answers(fake_iamport, iamport, control):
    control("stall", {"seconds": 0.3, "count": 1, "match": "getToken"})
    started = time.monotonic()
    with pytest.raises(Iamport.HttpError):
        iamport.find(imp_uid="imp_000000000000")
    assert time.monotonic() - started >= 0.3


def test_clock_advance_reset_and_debug_listing(fake_iamport, iamport, control):
    before = fake_iamport.now()
    assert control("clock/advance", {"seconds": 3600})[1]["now"] >= before + 3600
    iamport.prepare("tkt_dbg", 1000)
    pay(fake_iamport, "tkt_dbg", 1000)
    status, listing = control("payments", method="GET")
    assert status == 200 and [p["merchant_uid"] for p in listing["payments"]] == ["tkt_dbg"]
    assert listing["prepared"] == [{"merchant_uid": "tkt_dbg", "amount": 1000, "currency": "KRW"}]
    logged = control("requests", method="GET")[1]["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [
        ("POST", "/users/getToken", 200),
        ("POST", "/payments/prepare", 200),
    ]
    assert control("reset") == (200, {"reset": True})
    assert fake_iamport.payments == {} and fake_iamport.prepared == {} and fake_iamport.now() < before + 60


def test_unknown_control_endpoint_is_404(fake_iamport, control):
    assert control("nothing/here")[0] == 404


# --- browser pieces: SDK shim, CORS, simulator pages (§3) -------------------------------


def test_sdk_shim_is_served_with_its_own_base_url(fake_iamport):
    response = requests.get(fake_iamport.sdk_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert "window.IMP" in response.text and "request_pay" in response.text
    assert f'var BASE = "{fake_iamport.url}";' in response.text


def test_cors_preflight_for_the_shim(fake_iamport):
    response = requests.options(
        f"{fake_iamport.url}__fake__/sessions",
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


def start_session(fake: FakeIamport, **params) -> dict:
    body = {"params": {"merchant_uid": "tkt_web", "amount": 12000, **params}, "merchant_code": "imp00000000"}
    response = requests.post(
        f"{fake.url}__fake__/sessions", json={**body, "origin": "http://127.0.0.1:8000"}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return response.json()


def test_redirect_flow_through_the_simulator(fake_iamport, iamport):
    session = start_session(fake_iamport, m_redirect_url="http://127.0.0.1:8000/pay/done?x=1", name="뮤지컬")
    page = requests.get(session["pay_url"], timeout=5).text
    assert 'aria-label="Approve payment"' in page and 'aria-label="Decline"' in page
    assert "뮤지컬" in page and "12,000원" in page
    response = requests.post(session["pay_url"], data={"choice": "approve"}, allow_redirects=False, timeout=5)
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == "/pay/done"
    query = urllib.parse.parse_qs(location.query)
    assert query["x"] == ["1"] and query["imp_success"] == ["true"] and query["merchant_uid"] == ["tkt_web"]
    assert iamport.find(imp_uid=query["imp_uid"][0])["status"] == "paid"
    # A second choice changes nothing.
    again = requests.post(session["pay_url"], data={"choice": "decline"}, allow_redirects=False, timeout=5)
    assert again.headers["Location"] == response.headers["Location"]


def test_iframe_flow_posts_the_result_to_the_merchant_page(fake_iamport):
    session = start_session(fake_iamport, pay_method="vbank")
    page = requests.get(session["pay_url"] + "?mode=iframe", timeout=5).text
    assert 'aria-label="Issue virtual account"' in page and 'aria-label="Approve payment"' not in page
    assert "국민은행" in page and "계좌번호" in page
    result = requests.post(session["pay_url"], data={"choice": "vbank", "mode": "iframe"}, timeout=5)
    assert result.status_code == 200
    assert "postMessage" in result.text and '"http://127.0.0.1:8000"' in result.text
    assert '"type": "fake-iamport:result"' in result.text and '"status": "ready"' in result.text


def test_session_refused_at_once_has_no_pay_url(fake_iamport):
    fake_iamport.prepare({"merchant_uid": "tkt_web", "amount": 1})
    session = start_session(fake_iamport)
    assert session["pay_url"] is None and session["rsp"]["imp_uid"] is None


def test_console_page_and_form_actions(fake_iamport):
    imp_uid = pay(fake_iamport, "tkt_ui", 3000, outcome="vbank")["rsp"]["imp_uid"]
    page = requests.get(f"{fake_iamport.url}__fake__/", timeout=5)
    assert page.status_code == 200 and imp_uid in page.text and "Deposit" in page.text
    deposit = requests.post(
        f"{fake_iamport.url}__fake__/vbank/deposit", data={"imp_uid": imp_uid}, allow_redirects=False, timeout=5
    )
    assert deposit.status_code == 303
    assert fake_iamport.payments[imp_uid]["status"] == "paid"


# --- standalone ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_standalone_cli_serves_the_api_without_django():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        f"import sys; sys.argv = ['x', '--port', '{port}', '--imp-key', 'k', '--imp-secret', 's', '--quiet'];"
        "import payments.fake_iamport.__main__ as m; assert 'django' not in sys.modules; sys.exit(m.main())"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        client = Iamport("k", "s", imp_url=f"http://127.0.0.1:{port}/")
        assert client.prepare("tkt_cli", 1000)["amount"] == 1000
    finally:
        process.terminate()
        process.wait(5)
