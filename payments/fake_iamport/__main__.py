"""Run the fake I'mport server: python -m payments.fake_iamport [--host H] [--port P] ..."""

from __future__ import annotations

import argparse
import os
import sys

from .server import FakeIamport


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m payments.fake_iamport",
        description="Local fake of the I'mport (PortOne V1) REST API, browser SDK and webhooks.",
    )
    parser.add_argument("--host", default=os.environ.get("FAKE_IAMPORT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAKE_IAMPORT_PORT", "8765")))
    parser.add_argument("--imp-key", default=os.environ.get("FAKE_IAMPORT_KEY", "fake-key"))
    parser.add_argument("--imp-secret", default=os.environ.get("FAKE_IAMPORT_SECRET", "fake-secret"))
    parser.add_argument(
        "--notice-url",
        default=os.environ.get("FAKE_IAMPORT_NOTICE_URL") or None,
        help="the console's webhook URL, for payments whose request_pay had no notice_url",
    )
    parser.add_argument("--webhook-format", choices=("json", "form"), default="json")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)

    try:
        fake = FakeIamport(
            args.host,
            args.port,
            imp_key=args.imp_key,
            imp_secret=args.imp_secret,
            notice_url=args.notice_url,
            verbose=not args.quiet,
        )
    except OSError as exc:
        print(f"fake I'mport: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    fake.webhooks.default_format = fake.webhooks.config.format = args.webhook_format
    print(
        f"Fake I'mport listening on {fake.url} (console {fake.url}__fake__/, SDK {fake.sdk_url})",
        flush=True,
    )
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
