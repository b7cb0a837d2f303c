"""The I'mport (PortOne V1) gateway: the only module that touches iamport-rest-client.

iamport-rest-client 0.9.0 is thin and unmaintained (see specs/iamport-v1.md §1), so
this adapter adds what it lacks:

- Timeouts. The client sets none, so a stalled I'mport would hang a web worker for
  good. A default (connect, read) timeout is set on the session's adapters, for
  http (the fake) and https (the real API) alike.
- A cached access token. The client asks for a new token before every call, doubling
  the latency of each lookup. Tokens live 30 minutes; we keep one until shortly before
  its expiry (computed from the server's own `now`/`expired_at`, so clock skew does
  not matter) and, if the server still says 401, fetch a new one and retry once.
- URL-encoded path parameters, and early rejection of identifiers that could never
  be valid: the client pastes them into the URL as they are, so a `/` or `?` from a
  forged callback would change which endpoint we call.
- One exception hierarchy. Everything the client, requests or a malformed answer can
  raise becomes a GatewayError subclass, logged with its context, so no gateway
  failure ever turns into a 500:

    GatewayError
    ├── GatewayUnavailable   timeouts, connection errors, HTTP 5xx/408/429, malformed
    │                        answers: the outcome is unknown, retry or reconcile later
    └── GatewayRejected      I'mport answered and said no (ResponseError, other 4xx)
        └── PaymentNotFound  unknown imp_uid / merchant_uid (404), or one that
                             cannot exist

Money amounts are KRW integers throughout.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from iamport import Iamport
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

# merchant_uid: at most 40 characters [PAYRQ]; we only ever generate [A-Za-z0-9_-].
MERCHANT_UID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")
# imp_uid looks like imp_448280090638; allow some headroom but the same characters.
IMP_UID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Refresh a cached token this many seconds before the server says it expires.
TOKEN_REFRESH_MARGIN = 60
# The real API answers "nothing to cancel" with code 1, not with a 404 [REPO tests].
CANCEL_NOT_FOUND_MESSAGE = "취소할 결제건이 존재하지 않습니다."


# --- Errors ---------------------------------------------------------------------------


class GatewayError(Exception):
    """Base of every error the gateway raises; callers catch this, never a 500.

    `message` is a human-readable English or Korean sentence (I'mport's own text when
    it gave one); `code` is I'mport's response code or the HTTP status, when known.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class GatewayUnavailable(GatewayError):
    """I'mport could not be asked, or its answer made no sense: the outcome is unknown.

    Retry later, or let reconciliation re-fetch the payment. Never assume a cancel
    that raised this did not happen.
    """


class GatewayRejected(GatewayError):
    """I'mport answered and refused (a ResponseError, or an HTTP 4xx other than 404)."""


class PaymentNotFound(GatewayRejected):
    """I'mport knows no such payment (404), or the identifier could never exist."""


# --- Payment --------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as I'mport reports it (specs/iamport-v1.md §2.4).

    Timestamps are timezone-aware UTC datetimes, None where I'mport sends 0. Strings
    that I'mport leaves null are "". `raw` is the response exactly as received
    (JSON-serialisable), for storing alongside our own record.
    """

    imp_uid: str
    merchant_uid: str
    amount: int
    cancel_amount: int
    currency: str
    status: str  # ready | paid | cancelled | failed
    pay_method: str
    paid_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    fail_reason: str
    vbank_name: str
    vbank_num: str
    vbank_holder: str
    vbank_date: datetime | None
    receipt_url: str
    raw: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def cancellable_amount(self) -> int:
        """What can still be refunded: the `checksum` a cancel must send."""
        return self.amount - self.cancel_amount

    @classmethod
    def from_response(cls, data: Any) -> GatewayPayment:
        """Build from a payment object; raises ValueError/KeyError/TypeError if malformed."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a payment object, got {type(data).__name__}")
        return cls(
            imp_uid=_required_str(data, "imp_uid"),
            merchant_uid=_required_str(data, "merchant_uid"),
            amount=_krw(data["amount"]),
            cancel_amount=_krw(data.get("cancel_amount") or 0),
            currency=_required_str(data, "currency"),
            status=_required_str(data, "status"),
            pay_method=_str(data.get("pay_method")),
            paid_at=_timestamp(data.get("paid_at")),
            failed_at=_timestamp(data.get("failed_at")),
            cancelled_at=_timestamp(data.get("cancelled_at")),
            fail_reason=_str(data.get("fail_reason")),
            vbank_name=_str(data.get("vbank_name")),
            vbank_num=_str(data.get("vbank_num")),
            vbank_holder=_str(data.get("vbank_holder")),
            vbank_date=_timestamp(data.get("vbank_date")),
            receipt_url=_str(data.get("receipt_url")),
            raw=data,
        )


def _required_str(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _krw(value: Any) -> int:
    # Amounts are JSON numbers; a KRW amount with a fraction is a malformed answer.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"amount must be a whole number, got {value!r}")
    return int(value)


def _timestamp(value: Any) -> datetime | None:
    if value in (None, 0, "0", ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"timestamp must be Unix seconds, got {value!r}")
    return datetime.fromtimestamp(value, tz=UTC)


# --- Client ---------------------------------------------------------------------------


class _TimeoutHTTPAdapter(HTTPAdapter):
    """An HTTPAdapter that applies a default (connect, read) timeout to every request."""

    def __init__(self, *, timeout: tuple[float, float], **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class _TokenRejected(Iamport.HttpError):
    """users/getToken itself answered non-200: the credentials are wrong, not stale."""


class _Client(Iamport):
    """iamport-rest-client with timeouts, a cached token and URL-encoded path parameters."""

    def __init__(self, imp_key: str, imp_secret: str, imp_url: str, *, timeout: tuple[float, float]) -> None:
        super().__init__(imp_key, imp_secret, imp_url)
        # Retry only connection failures (the request never reached I'mport); a read
        # timeout on a cancel must not be retried blindly, it may have gone through.
        retry = Retry(total=2, connect=2, read=0, status=0, redirect=0, other=0, backoff_factor=0.1)
        adapter = _TimeoutHTTPAdapter(timeout=timeout, max_retries=retry)
        self.requests_session.mount("http://", adapter)
        self.requests_session.mount("https://", adapter)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_valid_until = 0.0  # time.monotonic()

    def _get_token(self) -> str:
        # One lock per process: concurrent requests wait for one token instead of each
        # fetching their own.
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_valid_until:
                return self._token
            response = self.requests_session.post(
                f"{self.imp_url}users/getToken", json={"imp_key": self.imp_key, "imp_secret": self.imp_secret}
            )
            try:
                data = self.get_response(response)
            except Iamport.HttpError as exc:
                raise _TokenRejected(exc.code, exc.reason) from exc
            token = data["access_token"]
            if not isinstance(token, str) or not token:
                raise ValueError(f"access_token must be a non-empty string, got {token!r}")
            # Lifetime by the server's clock, so a skewed local clock does not matter.
            lifetime = int(data["expired_at"]) - int(data["now"])
            self._token = token
            self._token_valid_until = time.monotonic() + max(0, lifetime - TOKEN_REFRESH_MARGIN)
            return token

    def forget_token(self) -> None:
        with self._token_lock:
            self._token = None
            self._token_valid_until = 0.0

    # The parent pastes path parameters into the URL unencoded (spec §1.1).
    def find_by_imp_uid(self, imp_uid: str) -> Any:
        return self._get(f"{self.imp_url}payments/{quote(imp_uid, safe='')}")

    def find_by_merchant_uid(self, merchant_uid: str) -> Any:
        return self._get(f"{self.imp_url}payments/find/{quote(merchant_uid, safe='')}")

    def get_prepared(self, merchant_uid: str) -> Any:
        """GET payments/prepare/{merchant_uid}: the registered {merchant_uid, amount}."""
        return self._get(f"{self.imp_url}payments/prepare/{quote(merchant_uid, safe='')}")

    def prepare_validate(self, merchant_uid: str, amount: int) -> bool:
        return self.get_prepared(merchant_uid).get("amount") == amount

    def revoke_vbank_by_imp_uid(self, imp_uid: str) -> Any:
        return self._delete(f"{self.imp_url}vbanks/{quote(imp_uid, safe='')}")


# --- Gateway --------------------------------------------------------------------------


class Gateway:
    """Typed access to I'mport. Use get_gateway(); one instance serves a whole process."""

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        api_secret: str,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
    ) -> None:
        # The client builds URLs as f"{imp_url}payments/..." (spec §1.1).
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._client = _Client(api_key, api_secret, self.api_url, timeout=(connect_timeout, read_timeout))

    @property
    def client(self) -> Iamport:
        """The underlying iamport-rest-client (for tests and one-off scripts)."""
        return self._client

    def prepare(self, *, merchant_uid: str, amount: int) -> None:
        """Register the amount for merchant_uid before the browser opens the payment window.

        Idempotent: a merchant_uid already registered with the same amount is fine (a
        retried checkout); with another amount it raises GatewayRejected.
        """
        _check_merchant_uid(merchant_uid, for_lookup=False)
        _check_amount(amount, "amount")
        context = {"merchant_uid": merchant_uid, "amount": amount}
        try:
            self._call("prepare", context, lambda: self._client.prepare(merchant_uid, amount))
        except GatewayRejected as exc:
            if not isinstance(exc.__cause__, Iamport.ResponseError):
                raise
            # Most likely "already registered" (code 1): fine if the amounts agree.
            try:
                registered = self._call(
                    "prepare_validate", context, lambda: _krw(self._client.get_prepared(merchant_uid)["amount"])
                )
            except PaymentNotFound:
                raise exc from None
            if registered != amount:
                logger.warning(
                    "I'mport prepare %s: already registered with %s, not %s", merchant_uid, registered, amount
                )
                raise GatewayRejected(
                    f"merchant_uid {merchant_uid} is already registered with amount {registered}, not {amount}",
                    code=exc.code,
                ) from exc

    def find(self, *, imp_uid: str) -> GatewayPayment:
        """GET payments/{imp_uid}. PaymentNotFound for an unknown or impossible imp_uid."""
        _check_imp_uid(imp_uid)
        return self._call(
            "find", {"imp_uid": imp_uid}, lambda: self._payment(self._client.find_by_imp_uid(imp_uid), imp_uid=imp_uid)
        )

    def find_by_merchant_uid(self, *, merchant_uid: str) -> GatewayPayment:
        """GET payments/find/{merchant_uid}: the latest attempt for that merchant_uid.

        A merchant_uid can have several attempts (e.g. a failed one, then a paid one);
        I'mport returns the most recently started.
        """
        _check_merchant_uid(merchant_uid, for_lookup=True)
        return self._call(
            "find_by_merchant_uid",
            {"merchant_uid": merchant_uid},
            lambda: self._payment(self._client.find_by_merchant_uid(merchant_uid), merchant_uid=merchant_uid),
        )

    def cancel(
        self,
        *,
        imp_uid: str,
        reason: str,
        amount: int | None = None,
        checksum: int | None = None,
        refund_holder: str = "",
        refund_bank: str = "",
        refund_account: str = "",
    ) -> GatewayPayment:
        """POST payments/cancel: refund `amount`, or everything that is left when None.

        A partial refund must pass amount > 0: I'mport treats a missing or 0 amount as
        a full refund, so 0 raises ValueError here. Pass `checksum` (the amount still
        refundable before this cancel, i.e. GatewayPayment.cancellable_amount) so that
        I'mport refuses, and executes nothing, if our idea of the balance is stale.
        Refunds of a paid virtual account need refund_holder/bank/account.

        GatewayUnavailable means the outcome is unknown: re-fetch before retrying.
        """
        _check_imp_uid(imp_uid)
        if amount is not None:
            _check_amount(amount, "amount")
        if checksum is not None:
            _check_amount(checksum, "checksum", allow_zero=True)
        extra: dict[str, Any] = {}
        if amount is not None:
            extra["amount"] = amount
        if checksum is not None:
            extra["checksum"] = checksum
        for key, value in (
            ("refund_holder", refund_holder),
            ("refund_bank", refund_bank),
            ("refund_account", refund_account),
        ):
            if value:
                extra[key] = value
        context = {"imp_uid": imp_uid, "amount": amount, "checksum": checksum}
        try:
            return self._call(
                "cancel",
                context,
                lambda: self._payment(self._client.cancel(reason, imp_uid=imp_uid, **extra), imp_uid=imp_uid),
            )
        except GatewayRejected as exc:
            if exc.message == CANCEL_NOT_FOUND_MESSAGE and not isinstance(exc, PaymentNotFound):
                raise PaymentNotFound(exc.message, code=exc.code) from exc
            raise

    def revoke_vbank(self, *, imp_uid: str) -> GatewayPayment:
        """DELETE vbanks/{imp_uid}: withdraw an issued, still unpaid virtual account."""
        _check_imp_uid(imp_uid)
        return self._call(
            "revoke_vbank",
            {"imp_uid": imp_uid},
            lambda: self._payment(self._client.revoke_vbank_by_imp_uid(imp_uid), imp_uid=imp_uid),
        )

    # --- internals ---

    @staticmethod
    def _payment(data: Any, *, imp_uid: str | None = None, merchant_uid: str | None = None) -> GatewayPayment:
        payment = GatewayPayment.from_response(data)
        # An answer about another payment than the one we asked for is malformed.
        if imp_uid is not None and payment.imp_uid != imp_uid:
            raise ValueError(f"asked for imp_uid {imp_uid}, got {payment.imp_uid}")
        if merchant_uid is not None and payment.merchant_uid != merchant_uid:
            raise ValueError(f"asked for merchant_uid {merchant_uid}, got {payment.merchant_uid}")
        return payment

    def _call(self, operation: str, context: dict[str, Any], func: Callable[[], T]) -> T:
        """Run one client call, refreshing a stale token once, mapping every failure."""
        try:
            try:
                return func()
            except Iamport.HttpError as exc:
                if exc.code != 401 or isinstance(exc, _TokenRejected):
                    raise
                # Our cached token was revoked or expired early; a 401 means nothing was
                # executed, so one retry with a fresh token is safe even for a cancel.
                logger.info("I'mport %s %s: token rejected, fetching a new one", operation, context)
                self._client.forget_token()
                return func()
        except Iamport.ResponseError as exc:
            message = exc.message or f"I'mport refused {operation} (code {exc.code})"
            logger.warning("I'mport %s %s refused: code=%s message=%s", operation, context, exc.code, exc.message)
            raise GatewayRejected(str(message), code=_int_or_none(exc.code)) from exc
        except Iamport.HttpError as exc:
            raise self._http_error(operation, context, exc) from exc
        except requests.RequestException as exc:
            # Timeouts, refused connections, TLS errors; also requests' JSONDecodeError.
            logger.warning("I'mport %s %s unavailable: %r", operation, context, exc)
            raise GatewayUnavailable(f"I'mport {operation} failed: {exc.__class__.__name__}: {exc}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # A 200 whose body is not JSON, has no `code`, or is not a payment object.
            logger.warning("I'mport %s %s: malformed answer: %r", operation, context, exc)
            raise GatewayUnavailable(
                f"I'mport {operation}: malformed answer ({exc.__class__.__name__}: {exc})"
            ) from exc

    @staticmethod
    def _http_error(operation: str, context: dict[str, Any], exc: Iamport.HttpError) -> GatewayError:
        code = _int_or_none(exc.code)
        text = f"I'mport {operation}: HTTP {exc.code} {exc.reason or ''}".rstrip()
        if code == 404:
            logger.info("I'mport %s %s: not found (404)", operation, context)
            return PaymentNotFound(text, code=code)
        if code is not None and 400 <= code < 500 and code not in (408, 429):
            level = logging.ERROR if code == 401 else logging.WARNING  # 401 here: wrong key/secret
            logger.log(level, "I'mport %s %s rejected: HTTP %s %s", operation, context, exc.code, exc.reason)
            return GatewayRejected(text, code=code)
        # 5xx, and 408/429 which are worth retrying later, and any odd non-200.
        logger.warning("I'mport %s %s unavailable: HTTP %s %s", operation, context, exc.code, exc.reason)
        return GatewayUnavailable(text, code=code)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check_merchant_uid(merchant_uid: str, *, for_lookup: bool) -> None:
    if isinstance(merchant_uid, str) and MERCHANT_UID_RE.fullmatch(merchant_uid):
        return
    if for_lookup:
        # Such a merchant_uid cannot be ours: treat it as unknown rather than let a
        # "/" or "?" in it reach another endpoint.
        logger.warning("I'mport lookup refused: impossible merchant_uid %r", merchant_uid)
        raise PaymentNotFound(f"invalid merchant_uid {merchant_uid!r}")
    raise ValueError(f"merchant_uid must match [A-Za-z0-9_-]{{1,40}}, got {merchant_uid!r}")


def _check_imp_uid(imp_uid: str) -> None:
    # imp_uids come from the browser (callback, redirect) or a webhook: untrusted.
    if not (isinstance(imp_uid, str) and IMP_UID_RE.fullmatch(imp_uid)):
        logger.warning("I'mport request refused: impossible imp_uid %r", imp_uid)
        raise PaymentNotFound(f"invalid imp_uid {imp_uid!r}")


def _check_amount(value: Any, name: str, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not allow_zero):
        qualifier = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {qualifier} int (KRW), got {value!r}")


# --- Per-process instance ---------------------------------------------------------------


@functools.cache
def get_gateway() -> Gateway:
    """The process's gateway, built from the IAMPORT_* settings (rebuilt when they change)."""
    return Gateway(
        api_url=settings.IAMPORT_API_URL,
        api_key=settings.IAMPORT_API_KEY,
        api_secret=settings.IAMPORT_API_SECRET,
        connect_timeout=settings.IAMPORT_CONNECT_TIMEOUT,
        read_timeout=settings.IAMPORT_READ_TIMEOUT,
    )


@receiver(setting_changed)
def _forget_gateway(*, setting: str, **kwargs: Any) -> None:
    # Tests point the gateway at the fake server through the settings fixture.
    if setting.startswith("IAMPORT_"):
        get_gateway.cache_clear()
