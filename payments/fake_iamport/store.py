"""State and rules of the fake I'mport server, with no HTTP in it.

Everything here follows specs/iamport-v1.md §2: tokens (§2.3), payment objects
(§2.4), prepare (§2.5), cancel (§2.6), webhooks (§2.7) and the checkout that the
browser SDK would run (§3). One re-entrant lock guards all state; the HTTP layer in
server.py only parses requests and renders answers.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .webhooks import WebhookSender, to_bool

TOKEN_LIFETIME = 30 * 60
TOKEN_EXTEND_BELOW = 60  # a token asked for with less than this left ...
TOKEN_EXTENSION = 5 * 60  # ... lives this much longer
VBANK_DAYS = 3
STATUSES = ("ready", "paid", "cancelled", "failed")
SORTINGS = ("-started", "started", "-paid", "paid", "-updated", "updated")
KST = dt.timezone(dt.timedelta(hours=9))

# Messages of the real API where known (spec §2.2); the rest are in its style.
MSG_UNAUTHORIZED = "Unauthorized"
MSG_TOKEN_MISSING = "imp_key, imp_secret 파라메터가 누락되었습니다."
MSG_TOKEN_BAD = "인증에 실패하였습니다. API키와 secret을 확인하세요."
MSG_PAYMENT_NOT_FOUND = "존재하지 않는 결제정보입니다."
MSG_PREPARE_NOT_FOUND = "사전등록된 결제정보가 존재하지 않습니다."
MSG_PREPARE_DUPLICATE = "결제정보 사전등록에 실패하였습니다(이미 등록된 merchant_uid입니다)."
MSG_CANCEL_NOT_FOUND = "취소할 결제건이 존재하지 않습니다."
MSG_CANCEL_ALREADY = "이미 전액취소된 주문입니다."
MSG_BAD_STATUS = "지원되지 않는 상태값입니다."
MSG_CERT_NOT_FOUND = "인증결과가 존재하지 않습니다."
MSG_CUSTOMER_NOT_FOUND = "존재하지 않는 구매자정보입니다."

# Checkout errors, as the SDK's callback would report them (rsp.error_code/error_msg).
ERR_PREPARE_MISMATCH = ("F400", "[결제검증] 사전등록된 결제정보와 금액이 일치하지 않습니다. (fake)")
ERR_ALREADY_PAID = ("F400", "이미 결제완료된 주문번호(merchant_uid)입니다. (fake)")
ERR_BAD_PARAMS = ("F400", "결제요청 파라메터가 올바르지 않습니다. (fake)")
ERR_DECLINED = ("F1002", "[결제실패] 카드사 승인이 거절되었습니다. (fake decline)")
ERR_ABANDONED = ("F1001", "사용자가 결제를 취소하셨습니다. (fake)")

OUTCOMES = ("approve", "decline", "vbank", "abandon")


class ApiError(Exception):
    """An answer of the REST API other than success: HTTP status + envelope code/message."""

    def __init__(self, http_status: int, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.code = code


class ControlError(Exception):
    """A bad request to a /__fake__/ control endpoint (answered 400 or 404)."""

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass
class CheckoutSession:
    id: str
    params: dict[str, Any]
    origin: str = ""
    merchant_code: str = ""
    imp_uid: str | None = None
    # Filled once the session has an outcome (at once if it failed validation).
    outcome: str | None = None
    rsp: dict[str, Any] | None = None
    redirect_url: str | None = None
    vbank_offer: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.rsp is not None


def to_int_amount(value: Any, name: str = "amount") -> int:
    """A KRW amount from JSON (number) or form (string); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    if isinstance(value, str):
        value = value.strip()
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def parse_vbank_due(value: Any, now: int) -> int:
    """The SDK's vbank_due: Unix seconds, 'YYYYMMDD', 'YYYYMMDDhhmm[ss]' or ISO 8601 (KST if naive)."""
    if value in (None, ""):
        return now + VBANK_DAYS * 24 * 3600
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if text.isdigit() and len(text) in formats:
        parsed = dt.datetime.strptime(text, formats[len(text)])
        if len(text) == 8:
            parsed = parsed.replace(hour=23, minute=59, second=59)
    elif text.isdigit():
        return int(text)
    else:
        parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=KST)
    return int(parsed.timestamp())


class IamportStore:
    """All state of the fake and the operations on it. Thread-safe."""

    def __init__(
        self,
        *,
        imp_key: str = "fake-key",
        imp_secret: str = "fake-secret",
        notice_url: str | None = None,
        base_url: str = "http://127.0.0.1:8765/",
    ) -> None:
        self.imp_key = imp_key
        self.imp_secret = imp_secret
        self.base_url = base_url
        self.lock = threading.RLock()
        self.webhooks = WebhookSender()
        self._default_notice_url = notice_url
        self._unstall = threading.Event()
        self.reset()

    # --- lifecycle and knobs ---

    def reset(self) -> None:
        """Forget every payment, token, session and log; restore every knob."""
        self.webhooks.reset()
        with self.lock:
            self._unstall.set()  # release requests still stalled
            self._unstall = threading.Event()
            self.payments: dict[str, dict[str, Any]] = {}
            self.prepared: dict[str, dict[str, Any]] = {}
            self.sessions: dict[str, CheckoutSession] = {}
            self.tokens: dict[str, int] = {}  # token -> expires at (fake clock)
            self.request_log: list[dict[str, Any]] = []
            self.clock_offset = 0.0
            # The console's webhook URL, used when a payment has no notice_url.
            self.notice_url = self._default_notice_url
            # Unconfirmed: does a partial cancel keep `paid`? (spec §2.6)
            self.partial_cancel_status = "paid"
            # Unknown customer_get: the OpenAPI says 404, the client's tests expect code 1.
            self.customer_not_found = "http404"  # or "response_error"
            self.stall: dict[str, Any] = {"seconds": 0.0, "count": None, "match": ""}
            self.faults: list[dict[str, Any]] = []
            self._current_token: str | None = None
            self._seq = 0
            self._order: dict[str, int] = {}

    def now(self) -> int:
        """The fake clock (Unix seconds): real time plus `clock_offset`."""
        return int(time.time() + self.clock_offset)

    def advance_clock(self, seconds: float) -> int:
        with self.lock:
            self.clock_offset += float(seconds)
            return self.now()

    def set_stall(self, seconds: float, *, count: int | None = None, match: str = "") -> None:
        """Make API requests (whose path contains `match`) wait `seconds` before answering."""
        with self.lock:
            self.stall = {"seconds": float(seconds), "count": count, "match": match}

    def add_fault(
        self,
        *,
        status: int = 500,
        body: str | None = None,
        content_type: str = "application/json; charset=UTF-8",
        count: int | None = 1,
        match: str = "",
    ) -> None:
        """Answer the next `count` API requests (path containing `match`) with a raw response."""
        if body is None:
            body = json.dumps({"code": -1, "message": "fake fault", "response": None})
        with self.lock:
            self.faults.append(
                {"status": int(status), "body": body, "content_type": content_type, "count": count, "match": match}
            )

    def take_stall(self, path: str) -> tuple[float, threading.Event]:
        with self.lock:
            stall = self.stall
            if stall["seconds"] <= 0 or stall["match"] not in path:
                return 0.0, self._unstall
            if stall["count"] is not None:
                if stall["count"] <= 0:
                    return 0.0, self._unstall
                stall["count"] -= 1
            return stall["seconds"], self._unstall

    def take_fault(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.faults:
                if fault["match"] in path and (fault["count"] is None or fault["count"] > 0):
                    if fault["count"] is not None:
                        fault["count"] -= 1
                    return dict(fault)
            return None

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)

    def requests_to(self, path_part: str, method: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests whose path contains `path_part` (for counting in tests)."""
        with self.lock:
            return [
                r
                for r in self.request_log
                if path_part in r["path"] and (method is None or r["method"] == method.upper())
            ]

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        return self.webhooks.wait(timeout)

    @property
    def webhook_log(self) -> list[dict[str, Any]]:
        return self.webhooks.log

    # --- tokens (§2.3) ---

    def issue_token(self, imp_key: Any, imp_secret: Any) -> dict[str, Any]:
        if not imp_key or not imp_secret:
            raise ApiError(401, MSG_TOKEN_MISSING)
        if (imp_key, imp_secret) != (self.imp_key, self.imp_secret):
            raise ApiError(401, MSG_TOKEN_BAD)
        with self.lock:
            now = self.now()
            token = self._current_token
            if token is not None and self.tokens.get(token, 0) > now:
                # The same token while it is valid; nearly expired ones are extended.
                if self.tokens[token] - now < TOKEN_EXTEND_BELOW:
                    self.tokens[token] += TOKEN_EXTENSION
            else:
                token = secrets.token_hex(20)
                self.tokens[token] = now + TOKEN_LIFETIME
                self._current_token = token
            return {"access_token": token, "now": now, "expired_at": self.tokens[token]}

    def check_token(self, token: str | None) -> None:
        with self.lock:
            if not token or self.tokens.get(token, 0) <= self.now():
                raise ApiError(401, MSG_UNAUTHORIZED)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()
            self._current_token = None

    # --- payments (§2.4) ---

    def _new_imp_uid(self) -> str:
        while True:
            imp_uid = f"imp_{secrets.randbelow(10**12):012d}"
            if imp_uid not in self.payments:
                return imp_uid

    def get_payment(self, imp_uid: str) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(imp_uid)
            if payment is None:
                raise ApiError(404, MSG_PAYMENT_NOT_FOUND)
            return _copy(payment)

    def _sorted(self, payments: list[dict[str, Any]], sorting: str) -> list[dict[str, Any]]:
        if sorting not in SORTINGS:
            raise ApiError(400, f"지원되지 않는 정렬기준입니다. ({sorting})")
        key_name = sorting.lstrip("-")

        def key(p: dict[str, Any]) -> tuple[int, int]:
            if key_name == "started":
                value = p["started_at"]
            elif key_name == "paid":
                value = p["paid_at"]
            else:
                value = max(p["started_at"], p["paid_at"], p["failed_at"], p["cancelled_at"])
            return value, self._order[p["imp_uid"]]

        return sorted(payments, key=key, reverse=sorting.startswith("-"))

    def find_by_merchant_uid(self, merchant_uid: str, status: str | None = None, sorting: str = "-started") -> dict:
        if status is not None and status not in STATUSES:
            raise ApiError(400, MSG_BAD_STATUS)
        with self.lock:
            matches = [
                p
                for p in self.payments.values()
                if p["merchant_uid"] == merchant_uid and (status is None or p["status"] == status)
            ]
            if not matches:
                raise ApiError(404, MSG_PAYMENT_NOT_FOUND)
            return _copy(self._sorted(matches, sorting)[0])

    def list_by_status(self, status: str, query: dict[str, str]) -> dict[str, Any]:
        if status != "all" and status not in STATUSES:
            raise ApiError(400, MSG_BAD_STATUS)
        try:
            page = max(1, int(query.get("page", 1)))
            limit = min(1000, max(1, int(query.get("limit", 20))))
            to = int(query.get("to") or self.now())
            since = int(query.get("from") or to - 90 * 24 * 3600)
        except ValueError:
            raise ApiError(400, "잘못된 요청입니다. (page, limit, from, to)") from None
        with self.lock:
            matches = [
                p
                for p in self.payments.values()
                if (status == "all" or p["status"] == status) and since <= p["started_at"] <= to
            ]
            matches = self._sorted(matches, query.get("sorting", "-started"))
            start = (page - 1) * limit
            return {
                "total": len(matches),
                "previous": page - 1 if page > 1 else 0,
                "next": page + 1 if start + limit < len(matches) else 0,
                "list": [_copy(p) for p in matches[start : start + limit]],
            }

    def all_payments(self) -> list[dict[str, Any]]:
        with self.lock:
            return [_copy(p) for p in sorted(self.payments.values(), key=lambda p: self._order[p["imp_uid"]])]

    # --- prepare (§2.5) ---

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        merchant_uid = body.get("merchant_uid")
        if not merchant_uid or not isinstance(merchant_uid, str):
            raise ApiError(200, "merchant_uid 파라메터가 누락되었습니다.", code=1)
        try:
            amount = to_int_amount(body.get("amount"))
        except ValueError as exc:
            raise ApiError(200, f"결제정보 사전등록에 실패하였습니다({exc}).", code=1) from None
        with self.lock:
            if merchant_uid in self.prepared:
                raise ApiError(200, MSG_PREPARE_DUPLICATE, code=1)
            self.prepared[merchant_uid] = {
                "merchant_uid": merchant_uid,
                "amount": amount,
                "currency": body.get("currency") or "KRW",
            }
            return dict(self.prepared[merchant_uid])

    def get_prepared(self, merchant_uid: str) -> dict[str, Any]:
        with self.lock:
            if merchant_uid not in self.prepared:
                raise ApiError(404, MSG_PREPARE_NOT_FOUND)
            return dict(self.prepared[merchant_uid])

    def update_prepared(self, body: dict[str, Any]) -> dict[str, Any]:
        merchant_uid = body.get("merchant_uid")
        try:
            amount = to_int_amount(body.get("amount"))
        except ValueError as exc:
            raise ApiError(200, f"사전등록 금액 변경에 실패하였습니다({exc}).", code=1) from None
        with self.lock:
            if merchant_uid not in self.prepared:
                raise ApiError(404, MSG_PREPARE_NOT_FOUND)
            self.prepared[merchant_uid]["amount"] = amount
            return dict(self.prepared[merchant_uid])

    # --- checkout (§2.5, §2.8, §3) ---

    def start_checkout(self, params: dict[str, Any], *, origin: str = "", merchant_code: str = "") -> CheckoutSession:
        """What IMP.request_pay does before showing the PG window.

        Fails at once (imp_uid null) if the params are unusable, the amount differs from
        the prepared one, or the merchant_uid is already paid; otherwise creates a
        `ready` payment, as the real service does when the window opens.
        """
        with self.lock:
            session = CheckoutSession(
                id=secrets.token_urlsafe(12), params=dict(params), origin=origin, merchant_code=merchant_code
            )
            self.sessions[session.id] = session
            merchant_uid = params.get("merchant_uid")
            pay_method = params.get("pay_method") or "card"
            try:
                if not isinstance(merchant_uid, str) or not 0 < len(merchant_uid) <= 40:
                    raise ValueError("merchant_uid must be a string of 1 to 40 characters")
                amount = params.get("amount")
                if isinstance(amount, str):  # the SDK wants a number; a string is a bug
                    raise ValueError("amount must be a number, not a string")
                amount = to_int_amount(amount)
                if amount <= 0:
                    raise ValueError("amount must be positive")
            except ValueError as exc:
                self._fail_session(session, ERR_BAD_PARAMS[0], f"{ERR_BAD_PARAMS[1]} {exc}")
                return session
            prepared = self.prepared.get(merchant_uid)
            if prepared is not None and prepared["amount"] != amount:
                self._fail_session(session, *ERR_PREPARE_MISMATCH)
                return session
            if self._is_paid(merchant_uid):
                self._fail_session(session, *ERR_ALREADY_PAID)
                return session
            payment = self._new_payment(params, amount=amount, pay_method=pay_method)
            session.imp_uid = payment["imp_uid"]
            if pay_method == "vbank":
                session.vbank_offer = self._vbank_offer(params)
            return session

    def complete_checkout(self, session_id: str, outcome: str) -> CheckoutSession:
        """The customer's choice in the PG window. Idempotent: a second choice is ignored."""
        if outcome not in OUTCOMES:
            raise ControlError(f"outcome must be one of {OUTCOMES}")
        notify: tuple[dict[str, Any], str] | None = None
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                raise ControlError("no such checkout session", 404)
            if session.done:
                return session
            payment = self.payments[session.imp_uid]
            is_vbank = payment["pay_method"] == "vbank"
            if outcome == "approve" and is_vbank:
                raise ControlError("a vbank session is completed with outcome 'vbank' (issue the account)")
            if outcome == "vbank" and not is_vbank:
                raise ControlError("outcome 'vbank' needs pay_method 'vbank'")
            now = self.now()
            session.outcome = outcome
            if outcome in ("approve", "vbank") and self._is_paid(payment["merchant_uid"]):
                # Another window paid this merchant_uid meanwhile.
                outcome = "decline"
                error = ERR_ALREADY_PAID
            else:
                error = ERR_DECLINED
            if outcome == "approve":
                self._mark_paid(payment, now)
                notify = (payment, "paid")
            elif outcome == "vbank":
                payment.update(session.vbank_offer)
                payment["vbank_issued_at"] = now
                payment["pg_tid"] = f"StdpayVBNKINIpayTest{now}{secrets.randbelow(10**6):06d}"
                notify = (payment, "ready")
            elif outcome == "abandon":
                # The window was closed: the payment stays `ready`, no webhook.
                error = ERR_ABANDONED
            else:
                payment.update(status="failed", failed_at=now, fail_reason=error[1])
            failed = outcome in ("decline", "abandon")
            session.rsp = self._rsp(payment, error=error if failed else None)
            session.redirect_url = self._redirect_url(session)
            rsp_session = session
        if notify:
            self._notify(*notify)
        return rsp_session

    def checkout(self, body: dict[str, Any]) -> CheckoutSession:
        """POST /__fake__/checkout: the whole browser flow in one call."""
        outcome = body.get("outcome") or "approve"
        if outcome not in OUTCOMES:
            raise ControlError(f"outcome must be one of {OUTCOMES}")
        params = {k: v for k, v in body.items() if k != "outcome"}
        if outcome == "vbank":
            params.setdefault("pay_method", "vbank")
        params["amount"] = to_int_amount(params.get("amount")) if params.get("amount") is not None else None
        session = self.start_checkout(params)
        if session.done:
            return session
        return self.complete_checkout(session.id, outcome)

    def get_session(self, session_id: str) -> CheckoutSession:
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                raise ControlError("no such checkout session", 404)
            return session

    def _is_paid(self, merchant_uid: str) -> bool:
        return any(p["merchant_uid"] == merchant_uid and p["paid_at"] for p in self.payments.values())

    def _fail_session(self, session: CheckoutSession, error_code: str, error_msg: str) -> None:
        session.outcome = "rejected"
        params = session.params
        session.rsp = {
            "imp_uid": None,
            "merchant_uid": params.get("merchant_uid"),
            "pay_method": params.get("pay_method") or "card",
            "paid_amount": 0,
            "status": "failed",
            "error_code": error_code,
            "error_msg": error_msg,
        }
        session.redirect_url = self._redirect_url(session)

    def _new_payment(self, params: dict[str, Any], *, amount: int, pay_method: str) -> dict[str, Any]:
        imp_uid = self._new_imp_uid()
        pg = str(params.get("pg") or params.get("channelKey") or "html5_inicis")
        pg_provider, _, pg_id = pg.partition(".")
        custom_data = params.get("custom_data")
        if custom_data is not None and not isinstance(custom_data, str):
            custom_data = json.dumps(custom_data, ensure_ascii=False)
        payment: dict[str, Any] = {
            "imp_uid": imp_uid,
            "merchant_uid": params["merchant_uid"],
            "pay_method": pay_method,
            "channel": "mobile" if params.get("m_redirect_url") else "pc",
            "pg_provider": pg_provider if "channelKey" not in params else "html5_inicis",
            "emb_pg_provider": None,
            "pg_tid": None,
            "pg_id": pg_id or "INIpayTest",
            "escrow": False,
            "apply_num": None,
            "bank_code": None,
            "bank_name": None,
            "card_code": None,
            "card_name": None,
            "card_quota": 0,
            "card_number": None,
            "card_type": None,
            "vbank_code": None,
            "vbank_name": None,
            "vbank_num": None,
            "vbank_holder": None,
            "vbank_date": 0,
            "vbank_issued_at": 0,
            "name": params.get("name"),
            "amount": amount,
            "cancel_amount": 0,
            "currency": params.get("currency") or "KRW",
            "buyer_name": params.get("buyer_name"),
            "buyer_email": params.get("buyer_email"),
            "buyer_tel": params.get("buyer_tel"),
            "buyer_addr": params.get("buyer_addr"),
            "buyer_postcode": params.get("buyer_postcode"),
            "custom_data": custom_data,
            "user_agent": "FakeIamport checkout",
            "status": "ready",
            "started_at": self.now(),
            "paid_at": 0,
            "failed_at": 0,
            "cancelled_at": 0,
            "fail_reason": None,
            "cancel_reason": None,
            "receipt_url": f"{self.base_url}__fake__/receipts/{imp_uid}",
            "cancel_history": [],
            "cancel_receipt_urls": [],
            "cash_receipt_issued": False,
            "customer_uid": None,
            "customer_uid_usage": None,
            "sandbox": True,
            # Not part of I'mport's object: kept so webhooks know where to go.
            "notice_url": params.get("notice_url") or None,
        }
        self._seq += 1
        self._order[imp_uid] = self._seq
        self.payments[imp_uid] = payment
        return payment

    def _vbank_offer(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        try:
            due = parse_vbank_due(params.get("vbank_due"), now)
        except ValueError:
            due = now + VBANK_DAYS * 24 * 3600
        return {
            "vbank_code": "004",
            "vbank_name": "국민은행",
            "vbank_num": f"{secrets.randbelow(10**6):06d}-01-{secrets.randbelow(10**6):06d}",
            "vbank_holder": str(params.get("vbank_holder") or "(주)티켓팅"),
            "vbank_date": due,
        }

    def _mark_paid(self, payment: dict[str, Any], now: int) -> None:
        payment.update(status="paid", paid_at=now, apply_num=f"{secrets.randbelow(10**8):08d}")
        method = payment["pay_method"]
        payment["pg_tid"] = payment["pg_tid"] or f"StdpayCARDINIpayTest{now}{secrets.randbelow(10**6):06d}"
        if method == "trans":
            payment.update(bank_code="004", bank_name="KB국민은행")
        elif method != "vbank":
            payment.update(card_code="361", card_name="BC카드", card_number="910020*********6", card_type=0)

    def _rsp(self, payment: dict[str, Any], *, error: tuple[str, str] | None = None) -> dict[str, Any]:
        """The callback's rsp, in the new v1 SDK's shape (no `success`: test error_code)."""
        rsp: dict[str, Any] = {
            "imp_uid": payment["imp_uid"],
            "merchant_uid": payment["merchant_uid"],
            "pay_method": payment["pay_method"],
            "paid_amount": 0 if error else payment["amount"],
            "status": payment["status"],
            "name": payment["name"],
            "pg_provider": payment["pg_provider"],
            "pg_tid": payment["pg_tid"],
            "currency": payment["currency"],
            "buyer_name": payment["buyer_name"],
            "buyer_email": payment["buyer_email"],
            "buyer_tel": payment["buyer_tel"],
            "buyer_addr": payment["buyer_addr"],
            "buyer_postcode": payment["buyer_postcode"],
            "custom_data": json.loads(payment["custom_data"]) if payment["custom_data"] else None,
        }
        if error:
            rsp.update(error_code=error[0], error_msg=error[1])
        else:
            rsp.update(
                paid_at=payment["paid_at"],
                receipt_url=payment["receipt_url"],
                apply_num=payment["apply_num"],
                card_name=payment["card_name"],
                bank_name=payment["bank_name"],
                card_quota=payment["card_quota"],
                card_number=payment["card_number"],
            )
        if payment["pay_method"] == "vbank" and payment["vbank_num"]:
            rsp.update(
                vbank_code=payment["vbank_code"],
                vbank_name=payment["vbank_name"],
                vbank_num=payment["vbank_num"],
                vbank_holder=payment["vbank_holder"],
                vbank_date=payment["vbank_date"],
                vbank_issued_at=payment["vbank_issued_at"],
            )
        return rsp

    @staticmethod
    def _redirect_url(session: CheckoutSession) -> str | None:
        """m_redirect_url?imp_uid=…&merchant_uid=…&imp_success=…[&error_code=&error_msg=] (§3)."""
        base = session.params.get("m_redirect_url")
        if not base or session.rsp is None:
            return None
        rsp = session.rsp
        query: dict[str, str] = {}
        if rsp.get("imp_uid"):  # null when the SDK refused before a payment existed
            query["imp_uid"] = rsp["imp_uid"]
        query["merchant_uid"] = str(rsp.get("merchant_uid") or "")
        query["imp_success"] = "false" if rsp.get("error_code") else "true"
        if rsp.get("error_code"):
            query["error_code"] = rsp["error_code"]
            query["error_msg"] = rsp["error_msg"]
        return base + ("&" if "?" in base else "?") + urllib.parse.urlencode(query)

    # --- vbank (§2.2, §2.7) ---

    def deposit(self, imp_uid: str) -> dict[str, Any]:
        """The customer pays into the issued virtual account: paid + webhook."""
        with self.lock:
            payment = self.payments.get(imp_uid)
            if payment is None:
                raise ControlError("no such payment", 404)
            if payment["pay_method"] != "vbank" or payment["status"] != "ready" or not payment["vbank_num"]:
                raise ControlError(f"only an issued, unpaid vbank can take a deposit (status={payment['status']})")
            self._mark_paid(payment, self.now())
            result = _copy(payment)
        self._notify(payment, "paid")
        return result

    def revoke_vbank(self, imp_uid: str) -> dict[str, Any]:
        """DELETE vbanks/{imp_uid}: withdraw an issued, unpaid virtual account."""
        with self.lock:
            payment = self.payments.get(imp_uid)
            if payment is None:
                raise ApiError(404, MSG_PAYMENT_NOT_FOUND)
            if payment["pay_method"] != "vbank" or payment["status"] != "ready" or not payment["vbank_num"]:
                raise ApiError(400, "가상계좌 발급취소는 입금대기(ready) 상태의 가상계좌 결제건만 가능합니다.")
            payment.update(status="cancelled", cancelled_at=self.now(), cancel_reason="가상계좌 발급취소")
            return _copy(payment)

    # --- cancel (§2.6) ---

    def cancel(self, body: dict[str, Any], *, console: bool = False) -> dict[str, Any]:
        """POST payments/cancel (or the console's cancel, which always sends a webhook)."""
        imp_uid = body.get("imp_uid")
        merchant_uid = body.get("merchant_uid")
        with self.lock:
            if imp_uid:  # imp_uid wins, even when it is wrong and merchant_uid is right
                payment = self.payments.get(imp_uid)
            elif merchant_uid:
                matches = [p for p in self.payments.values() if p["merchant_uid"] == merchant_uid]
                paid = [p for p in matches if p["paid_at"]]
                ordered = self._sorted(paid or matches, "-started")
                payment = ordered[0] if ordered else None
            else:
                raise ApiError(200, "imp_uid 또는 merchant_uid 파라메터가 누락되었습니다.", code=1)
            if payment is None:
                raise ApiError(200, MSG_CANCEL_NOT_FOUND, code=1)
            if payment["status"] == "cancelled":
                raise ApiError(200, MSG_CANCEL_ALREADY, code=1)
            if payment["status"] != "paid":
                raise ApiError(
                    200, f"결제완료 상태가 아닌 결제건은 취소할 수 없습니다. (status={payment['status']})", code=1
                )
            remaining = payment["amount"] - payment["cancel_amount"]
            try:
                requested = body.get("amount")
                requested = to_int_amount(requested) if requested not in (None, "") else 0
                checksum = body.get("checksum")
                checksum = to_int_amount(checksum, "checksum") if checksum not in (None, "") else None
            except ValueError as exc:
                raise ApiError(200, f"취소요청 파라메터가 올바르지 않습니다. ({exc})", code=1) from None
            if requested < 0:
                raise ApiError(200, "취소요청금액은 0보다 커야 합니다.", code=1)
            amount = requested or remaining  # missing or 0: everything that is left
            if checksum is not None and checksum != remaining:
                # Checked before anything changes: a stale caller executes nothing.
                raise ApiError(
                    200,
                    f"[checksum] 취소가능잔액({remaining}원)이 checksum({checksum}원)과 일치하지 않아"
                    " 취소가 진행되지 않았습니다.",
                    code=1,
                )
            if amount > remaining:
                raise ApiError(200, f"[PG] 취소요청금액({amount}원)이 취소가능잔액({remaining}원)보다 큽니다.", code=1)
            if payment["pay_method"] == "vbank" and not console:
                missing = [k for k in ("refund_holder", "refund_bank", "refund_account") if not body.get(k)]
                if missing:
                    raise ApiError(
                        200,
                        f"가상계좌 환불에는 환불계좌 정보가 필요합니다. (누락: {', '.join(missing)})",
                        code=1,
                    )
            now = self.now()
            reason = str(body.get("reason") or "")
            cancellation_id = f"fake_cancel_{secrets.token_hex(6)}"
            receipt_url = f"{self.base_url}__fake__/receipts/{payment['imp_uid']}?cancellation={cancellation_id}"
            payment["cancel_history"].append(
                {
                    "pg_tid": payment["pg_tid"],
                    "amount": amount,
                    "cancelled_at": now,
                    "reason": reason,
                    "cancellation_id": cancellation_id,
                    "receipt_url": receipt_url,
                }
            )
            payment["cancel_receipt_urls"].append(receipt_url)
            payment["cancel_amount"] += amount
            payment["cancel_reason"] = reason
            payment["cancelled_at"] = now
            fully = payment["cancel_amount"] >= payment["amount"]
            payment["status"] = "cancelled" if fully else self.partial_cancel_status
            result = _copy(payment)
        # An API cancel notifies only on request; the console always does (§2.7).
        if console or to_bool(body.get("enable_webhook", False)):
            self._notify(payment, "cancelled", cancellation_id=cancellation_id)
        return result

    # --- webhooks (§2.7) ---

    def _notify(self, payment: dict[str, Any], status: str, *, cancellation_id: str | None = None) -> int:
        body = {"imp_uid": payment["imp_uid"], "merchant_uid": payment["merchant_uid"], "status": status}
        if cancellation_id:
            body["cancellation_id"] = cancellation_id
        return self.webhooks.send(payment.get("notice_url") or self.notice_url, body)

    def resend_webhook(self, imp_uid: str) -> int:
        """The console's manual resend: the payment's current status."""
        with self.lock:
            payment = self.payments.get(imp_uid)
            if payment is None:
                raise ControlError("no such payment", 404)
        return self._notify(payment, payment["status"])


def _copy(payment: dict[str, Any]) -> dict[str, Any]:
    """A deep-enough copy of a payment as the API shows it (without our notice_url)."""
    result = {k: v for k, v in payment.items() if k != "notice_url"}
    result["cancel_history"] = [dict(c) for c in payment["cancel_history"]]
    result["cancel_receipt_urls"] = list(payment["cancel_receipt_urls"])
    return result
