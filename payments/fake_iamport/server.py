"""HTTP layer of the fake I'mport server: the REST API, the checkout simulator, controls.

Standard library only (no Django), so it starts instantly, standalone or inside tests:

    fake = FakeIamport(port=0)   # a free port
    fake.start()                 # serves from a background thread
    Iamport("fake-key", "fake-secret", imp_url=fake.url)
    fake.stop()

REST answers use I'mport's envelope `{"code", "message", "response"}` with
`Content-Type: application/json; charset=UTF-8` and standard reason phrases (the
client turns any non-200 into HttpError(status, reason) and ignores the body).
Control endpoints under /__fake__/ answer plain JSON and allow any origin (CORS),
because the JS shim calls them from the merchant's pages.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from string import Template
from typing import Any

from .store import KST, ApiError, CheckoutSession, ControlError, IamportStore

logger = logging.getLogger("payments.fake_iamport")

JSON_TYPE = "application/json; charset=UTF-8"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON safe to embed in a <script> element."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


class FakeIamport(IamportStore):
    """The fake server: state (see IamportStore) plus an HTTP server in a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        imp_key: str = "fake-key",
        imp_secret: str = "fake-secret",
        notice_url: str | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(imp_key=imp_key, imp_secret=imp_secret, notice_url=notice_url)
        self.verbose = verbose
        self.httpd = _Server((host, port), _Handler)
        self.httpd.fake = self
        bound_host, bound_port = self.httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        self.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the REST API, ending with "/" (what Iamport(imp_url=...) wants)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def sdk_url(self) -> str:
        return f"{self.url}__fake__/iamport.js"

    def start(self) -> FakeIamport:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-iamport", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.webhooks.reset()
        self._unstall.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FakeIamport:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeIamport

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        # A client that timed out and hung up is normal here (the stall knob); stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeIamport/1.0"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK
    # would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    # --- plumbing ---

    @property
    def fake(self) -> FakeIamport:
        return self.server.fake

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.verbose:
            sys.stderr.write(f"fake-iamport {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        if self._log_entry is not None:
            # Logged before answering, so a client that counts requests sees its own.
            self.fake.log_request({**self._log_entry, "status": status})
            self._log_entry = None
        self.send_response(status)  # adds the standard reason phrase
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _envelope(self, status: int, code: int, message: str | None, response: Any) -> None:
        body = json.dumps({"code": code, "message": message, "response": response}, ensure_ascii=False)
        self._send(status, body.encode(), JSON_TYPE)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), JSON_TYPE, CORS_HEADERS)

    def _html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=UTF-8", CORS_HEADERS)

    def _redirect(self, location: str) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location, **CORS_HEADERS})

    def _read_body(self) -> tuple[dict[str, Any], bool]:
        """The request body as a dict, and whether it was a form (JSON otherwise)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return dict(pairs), True
        if not raw.strip():
            return {}, False
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError(400, "요청 본문을 해석할 수 없습니다. (invalid JSON)") from None
        if not isinstance(value, dict):
            raise ApiError(400, "요청 본문은 JSON 객체여야 합니다.")
        return value, False

    def _dispatch(self, method: str) -> None:
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        query = dict(urllib.parse.parse_qsl(split.query))
        control = path.startswith("/__fake__/") or path == "/__fake__"
        # API requests are logged (see _send); control requests are not.
        self._log_entry = None if control else {"method": method, "path": path, "query": split.query}
        try:
            if control:
                self._control(method, path, query)
            else:
                self._api(method, path, query)
        except ApiError as exc:
            if control:
                self._json(exc.http_status if exc.http_status != 200 else 400, {"error": exc.message})
            else:
                self._envelope(exc.http_status, exc.code, exc.message, None)
        except ControlError as exc:
            self._json(exc.http_status, {"error": exc.message})
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            logger.exception("fake I'mport: error handling %s %s", method, self.path)
            self._envelope(500, -1, "fake I'mport internal error", None)

    # --- the REST API (§2) ---

    def _api(self, method: str, path: str, query: dict[str, str]) -> None:
        fake = self.fake
        seconds, unstall = fake.take_stall(path)
        if seconds:
            unstall.wait(seconds)
        body, _form = self._read_body()
        fault = fake.take_fault(path)
        if fault:
            self._send(fault["status"], fault["body"].encode(), fault["content_type"])
            return
        # Split before unquoting, so an encoded "/" stays inside its segment.
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts == ["users", "getToken"] and method == "POST":
            self._ok(fake.issue_token(body.get("imp_key"), body.get("imp_secret")))
            return
        fake.check_token(self._token())
        route = (method, *parts)
        match route:
            case ("GET", "payments", "find", merchant_uid):
                self._ok(fake.find_by_merchant_uid(merchant_uid, sorting=query.get("sorting", "-started")))
            case ("GET", "payments", "find", merchant_uid, status):
                self._ok(fake.find_by_merchant_uid(merchant_uid, status, sorting=query.get("sorting", "-started")))
            case ("GET", "payments", "status", status):
                self._ok(fake.list_by_status(status, query))
            case ("POST", "payments", "prepare"):
                self._ok(fake.prepare(body))
            case ("PUT", "payments", "prepare"):
                self._ok(fake.update_prepared(body))
            case ("GET", "payments", "prepare", merchant_uid):
                self._ok(fake.get_prepared(merchant_uid))
            case ("POST", "payments", "cancel"):
                self._ok(fake.cancel(body))
            case ("GET", "payments", imp_uid):
                self._ok(fake.get_payment(imp_uid))
            case ("DELETE", "vbanks", imp_uid):
                self._ok(fake.revoke_vbank(imp_uid))
            case ("GET" | "DELETE", "certifications", _imp_uid):
                # The fake issues no certifications.
                raise ApiError(404, "인증결과가 존재하지 않습니다.")
            case ("GET" | "DELETE", "subscribe", "customers", _customer_uid):
                # The fake stores no billing keys; how "unknown" looks is a knob (§2.2).
                if fake.customer_not_found == "response_error":
                    raise ApiError(200, "존재하지 않는 구매자정보입니다.", code=1)
                raise ApiError(404, "존재하지 않는 구매자정보입니다.")
            case _:
                raise ApiError(404, f"지원하지 않는 API입니다. (fake I'mport: {method} {path})")

    def _ok(self, response: Any) -> None:
        self._envelope(200, 0, None, response)

    def _token(self) -> str | None:
        # The client sends the raw token; the docs say "Bearer"; X-ImpTokenHeader is legacy.
        value = self.headers.get("Authorization") or self.headers.get("X-ImpTokenHeader") or ""
        value = value.strip()
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        return value or None

    # --- /__fake__/ (§2.8, §3) ---

    def _control(self, method: str, path: str, query: dict[str, str]) -> None:
        fake = self.fake
        if method == "OPTIONS":  # CORS preflight from the JS shim
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain", CORS_HEADERS)
            return
        body, form = self._read_body() if method in ("POST", "PUT") else ({}, False)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")[1:]]
        try:
            result = self._control_route(method, parts, query, body, form)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        if result is None:
            return  # the route answered itself
        if form and method == "POST":
            # A form on the console page: back to the console.
            self._redirect(f"{fake.url}__fake__/")
            return
        self._json(200, result)

    def _control_route(
        self, method: str, parts: list[str], query: dict[str, str], body: dict[str, Any], form: bool
    ) -> Any:
        fake = self.fake
        match (method, *parts):
            case ("GET",) | ("GET", ""):
                self._html(200, self._console_page())
            case ("GET", "iamport.js"):
                script = Template(_asset("iamport.js")).safe_substitute(base_url=self._public_base())
                self._send(200, script.encode(), "text/javascript; charset=UTF-8", CORS_HEADERS)
            case ("POST", "sessions"):  # from the shim's IMP.request_pay
                params = body.get("params")
                if not isinstance(params, dict):
                    raise ControlError("params must be an object")
                session = fake.start_checkout(
                    params, origin=str(body.get("origin") or ""), merchant_code=str(body.get("merchant_code") or "")
                )
                pay_url = f"{self._public_base()}__fake__/pay/{session.id}"
                return {
                    "session_id": session.id,
                    "pay_url": None if session.done else pay_url,
                    "rsp": session.rsp,
                    "redirect_url": session.redirect_url,
                }
            case ("GET", "pay", session_id):
                session = fake.get_session(session_id)
                self._html(200, self._simulator_page(session, iframe=query.get("mode") == "iframe"))
            case ("POST", "pay", session_id):
                iframe = (body.get("mode") or query.get("mode")) == "iframe"
                session = fake.complete_checkout(session_id, str(body.get("choice") or ""))
                if session.redirect_url and not iframe:
                    self._redirect(session.redirect_url)
                else:
                    self._html(200, self._result_page(session, iframe=iframe))
            case ("GET", "receipts", imp_uid):
                payment = fake.get_payment(imp_uid)
                rows = "".join(
                    f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(payment[k]))}</td></tr>"
                    for k in ("imp_uid", "merchant_uid", "name", "amount", "cancel_amount", "status", "pay_method")
                )
                self._html(
                    200, f'<!doctype html><meta charset="utf-8"><title>영수증 Receipt</title><table>{rows}</table>'
                )
            case ("POST", "checkout"):
                session = fake.checkout(body)
                return {"rsp": session.rsp, "redirect_url": session.redirect_url, "session_id": session.id}
            case ("POST", "vbank", "deposit"):
                return fake.deposit(_required(body, "imp_uid"))
            case ("POST", "console", "cancel"):
                payload = {k: v for k, v in body.items() if v not in ("", None)}
                payload["imp_uid"] = _required(body, "imp_uid")
                payload.setdefault("reason", "관리자 콘솔 취소 (fake console)")
                try:
                    return fake.cancel(payload, console=True)
                except ApiError as exc:
                    raise ControlError(exc.message) from None
            case ("POST", "webhooks", "resend"):
                return {"delivery": fake.resend_webhook(_required(body, "imp_uid"))}
            case ("POST", "webhooks", "config"):
                fake.webhooks.config.update(body)
                if "notice_url" in query:
                    fake.notice_url = query["notice_url"] or None
                return fake.webhooks.config.as_dict()
            case ("GET", "webhooks", "config"):
                return fake.webhooks.config.as_dict()
            case ("GET", "webhooks", "log"):
                return {"log": list(fake.webhook_log)}
            case ("POST", "webhooks", "wait"):
                return {"idle": fake.wait_for_webhooks(float(body.get("timeout", 10)))}
            case ("POST", "tokens", "expire"):
                fake.expire_tokens()
                return {"expired": True}
            case ("POST", "clock", "advance"):
                return {"now": fake.advance_clock(float(_required(body, "seconds")))}
            case ("POST", "stall"):
                count = body.get("count")
                fake.set_stall(
                    float(body.get("seconds", 0)),
                    count=None if count in (None, "") else int(count),
                    match=str(body.get("match") or ""),
                )
                return {"stall": fake.stall}
            case ("POST", "fault"):
                count = body.get("count", 1)
                fake.add_fault(
                    status=int(body.get("status", 500)),
                    body=body.get("body"),
                    content_type=str(body.get("content_type") or "application/json; charset=UTF-8"),
                    count=None if count in (None, "") else int(count),
                    match=str(body.get("match") or ""),
                )
                return {"faults": fake.faults}
            case ("POST", "settings"):
                if "partial_cancel_status" in body:
                    if body["partial_cancel_status"] not in ("paid", "cancelled"):
                        raise ControlError("partial_cancel_status must be 'paid' or 'cancelled'")
                    fake.partial_cancel_status = body["partial_cancel_status"]
                if "customer_not_found" in body:
                    if body["customer_not_found"] not in ("http404", "response_error"):
                        raise ControlError("customer_not_found must be 'http404' or 'response_error'")
                    fake.customer_not_found = body["customer_not_found"]
                if "notice_url" in body:
                    fake.notice_url = body["notice_url"] or None
                return self._settings()
            case ("GET", "settings"):
                return self._settings()
            case ("POST", "reset"):
                fake.reset()
                return {"reset": True}
            case ("GET", "payments"):
                with fake.lock:
                    prepared = list(fake.prepared.values())
                return {"payments": fake.all_payments(), "prepared": prepared}
            case ("GET", "requests"):
                with fake.lock:
                    return {"requests": list(fake.request_log)}
            case _:
                raise ControlError(f"unknown control endpoint {method} /__fake__/{'/'.join(parts)}", 404)
        return None

    def _settings(self) -> dict[str, Any]:
        fake = self.fake
        return {
            "partial_cancel_status": fake.partial_cancel_status,
            "customer_not_found": fake.customer_not_found,
            "notice_url": fake.notice_url,
            "now": fake.now(),
            "clock_offset": fake.clock_offset,
        }

    def _public_base(self) -> str:
        """This server's base URL as the browser reached it (localhost vs 127.0.0.1)."""
        host = self.headers.get("Host")
        return f"http://{host}/" if host else self.fake.url

    # --- pages ---

    def _simulator_page(self, session: CheckoutSession, *, iframe: bool) -> str:
        if session.done:
            return self._result_page(session, iframe=iframe)
        fake = self.fake
        payment = fake.get_payment(session.imp_uid) if session.imp_uid else {}
        params = session.params
        is_vbank = payment.get("pay_method") == "vbank"
        amount = payment.get("amount", 0)
        method_labels = {
            "card": "신용카드 Card",
            "trans": "실시간계좌이체 Bank transfer",
            "vbank": "가상계좌 Virtual account",
        }
        details = [
            ("주문명 Order", params.get("name") or ""),
            ("결제금액 Amount", f"{amount:,}원 (KRW)"),
            ("주문번호 merchant_uid", payment.get("merchant_uid", "")),
            ("결제수단 Method", method_labels.get(payment.get("pay_method"), payment.get("pay_method", ""))),
            ("구매자 Buyer", " ".join(str(params.get(k) or "") for k in ("buyer_name", "buyer_email")).strip()),
        ]
        vbank_html = ""
        if is_vbank:
            offer = session.vbank_offer
            rows = [
                ("은행 Bank", offer["vbank_name"]),
                ("계좌번호 Account number", offer["vbank_num"]),
                ("예금주 Account holder", offer["vbank_holder"]),
                ("입금기한 Deposit due", _kst(offer["vbank_date"])),
            ]
            vbank_html = (
                '<section aria-labelledby="vbank-h"><h2 id="vbank-h">발급될 가상계좌 · Virtual account to issue</h2>'
                + _dl(rows)
                + "</section>"
            )
        if is_vbank:
            main_button = _button("vbank", "Issue virtual account", "가상계좌 발급", primary=True)
        else:
            main_button = _button("approve", "Approve payment", "결제 승인", primary=True)
        return Template(_asset("simulator.html")).safe_substitute(
            title="결제 시뮬레이터 · Payment simulator",
            details=_dl(details),
            vbank=vbank_html,
            action=html.escape(f"/__fake__/pay/{session.id}"),
            mode="iframe" if iframe else "page",
            main_button=main_button,
            merchant_code=html.escape(session.merchant_code or "-"),
        )

    def _result_page(self, session: CheckoutSession, *, iframe: bool) -> str:
        rsp = session.rsp or {}
        failed = bool(rsp.get("error_code"))
        headline = (
            f"결제 실패 · Payment failed: {rsp.get('error_msg')}"
            if failed
            else ("가상계좌 발급 완료 · Virtual account issued" if rsp.get("status") == "ready" else "결제 완료 · Paid")
        )
        message = {"type": "fake-iamport:result", "session_id": session.id, "rsp": rsp}
        target = session.origin if session.origin.startswith(("http://", "https://")) else "*"
        script = ""
        if iframe:
            script = (
                "<script>(function(){var m=" + _script_json(message) + ";"
                "if(window.parent!==window){window.parent.postMessage(m," + _script_json(target) + ");}})();</script>"
            )
        link = ""
        if session.redirect_url and not iframe:
            url = html.escape(session.redirect_url)
            link = f'<p><a href="{url}">가맹점으로 돌아가기 · Back to the shop</a></p>'
        return (
            '<!doctype html><html lang="ko"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>결제 결과 · Payment result</title></head><body>"
            f'<main><h1 role="status">{html.escape(headline)}</h1>{link}'
            f"<pre>{html.escape(json.dumps(rsp, ensure_ascii=False, indent=2))}</pre></main>{script}</body></html>"
        )

    def _console_page(self) -> str:
        fake = self.fake
        rows = []
        for p in reversed(fake.all_payments()):
            imp_uid = html.escape(p["imp_uid"])
            actions = []
            if p["pay_method"] == "vbank" and p["status"] == "ready" and p["vbank_num"]:
                actions.append(_form("/__fake__/vbank/deposit", imp_uid, "입금 Deposit"))
            if p["status"] == "paid":
                actions.append(
                    _form(
                        "/__fake__/console/cancel",
                        imp_uid,
                        "취소 Cancel",
                        '<label>금액 Amount <input name="amount" inputmode="numeric" size="8"'
                        ' placeholder="전액 all"></label>',
                    )
                )
            actions.append(_form("/__fake__/webhooks/resend", imp_uid, "웹훅 재전송 Resend webhook"))
            cells = [
                imp_uid,
                html.escape(p["merchant_uid"]),
                html.escape(str(p["name"] or "")),
                f"{p['amount']:,}",
                f"{p['cancel_amount']:,}",
                html.escape(p["status"]),
                html.escape(p["pay_method"]),
                html.escape(f"{p['vbank_name']} {p['vbank_num']}" if p["vbank_num"] else ""),
                " ".join(actions),
            ]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        log_rows = [
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    e["delivery"],
                    e["url"],
                    json.dumps(e["body"], ensure_ascii=False),
                    e["outcome"],
                    e["status_code"],
                )
            )
            + "</tr>"
            for e in reversed(fake.webhook_log[-50:])
        ]
        headers = ["imp_uid", "merchant_uid", "주문명", "금액", "취소액", "상태", "수단", "가상계좌", "동작"]
        return Template(_asset("console.html")).safe_substitute(
            payment_headers="".join(f"<th scope='col'>{h}</th>" for h in headers),
            payments="".join(rows) or '<tr><td colspan="9">결제 없음 · No payments yet</td></tr>',
            webhooks="".join(log_rows) or '<tr><td colspan="5">없음 · None</td></tr>',
            notice_url=html.escape(fake.notice_url or "(none: payments without notice_url send nowhere)"),
            webhook_config=html.escape(json.dumps(fake.webhooks.config.as_dict())),
            api_url=html.escape(fake.url),
        )


def _required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value in (None, ""):
        raise ControlError(f"{key} is required")
    return value


def _dl(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def _button(choice: str, english: str, korean: str, *, primary: bool = False) -> str:
    # The accessible name is the English label alone, so tests can find it exactly.
    css = ' class="primary"' if primary else ""
    return f'<button name="choice" value="{choice}" aria-label="{english}"{css}>{korean} · {english}</button>'


def _form(action: str, imp_uid: str, label: str, extra: str = "") -> str:
    return (
        f'<form method="post" action="{action}" class="inline"><input type="hidden" name="imp_uid" value="{imp_uid}">'
        f"{extra}<button>{html.escape(label)}</button></form>"
    )


def _kst(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, KST).strftime("%Y-%m-%d %H:%M KST")
