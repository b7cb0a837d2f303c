"""Benchmark: the payment sync against the fake I'mport with a realistic delay.

Usage (from the repository root):
    .venv/bin/python bench/payment_sync.py [--payments 200] [--threads 8] [--delay 0.08]
    DATABASE_URL=mysql://root@127.0.0.1:3306/ticketing_paybench .venv/bin/python bench/payment_sync.py

It loads the demo data into a fresh database (a temporary SQLite file unless
DATABASE_URL is set), holds one seat for each of N customers, prepares a card payment
for each and pays it at the fake gateway (no webhook). Then it runs
`payments.services.payment_sync` for all of them from a pool of threads, with the
fake answering every API call after `--delay` seconds, as I'mport's API does from
Korea. It prints syncs per second, p50/p95/p99 latency, and how many gateway
requests one sync cost (token requests included), then syncs everything a second
time (the duplicate-webhook case) and reports that too.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.08, help="seconds the fake waits before each answer")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="ticketing-paybench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ["DEBUG"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

    from payments.fake_iamport import FakeIamport

    fake = FakeIamport("127.0.0.1", 0, imp_key="bench-key", imp_secret="bench-secret").start()
    os.environ.update(
        IAMPORT_API_URL=fake.url, IAMPORT_API_KEY="bench-key", IAMPORT_API_SECRET="bench-secret", REDIS_URL=""
    )

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections

    from events.models import Event, Performance
    from payments.services import payment_start, payment_sync
    from reservations.models import InventoryItem
    from reservations.services import Selection, reservation_hold

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    performance = Performance.objects.filter(event__slug="starlight-2026").order_by("id").first()
    Event.objects.filter(pk=performance.event_id).update(ticket_limit=4)
    seats = list(
        InventoryItem.objects.filter(performance=performance, seat__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[: args.payments]
    )
    User = get_user_model()
    imp_uids = []
    for index, item_id in enumerate(seats):
        user = User.objects.create_user(email=f"bench{index}-{uuid.uuid4().hex[:6]}@example.com", password=None)
        reservation = reservation_hold(
            user=user, performance=performance, selection=Selection(item_ids=(item_id,)), request_token=uuid.uuid4().hex
        )
        payment = payment_start(reservation=reservation, method="card")
        session = fake.checkout(
            {"merchant_uid": payment.merchant_uid, "amount": payment.amount, "pay_method": "card", "outcome": "approve"}
        )
        imp_uids.append(session.rsp["imp_uid"])

    def timed_sync(imp_uid):
        try:
            start = time.perf_counter()
            outcome = payment_sync(imp_uid=imp_uid, source="bench").outcome
            return (time.perf_counter() - start) * 1000, outcome
        finally:
            connections.close_all()

    def run(label):
        fake.request_log.clear()
        fake.set_stall(args.delay)
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            results = list(pool.map(timed_sync, imp_uids))
        wall = time.perf_counter() - began
        fake.set_stall(0)
        latencies = [ms for ms, _ in results]
        outcomes = {}
        for _, outcome in results:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        tokens = len(fake.requests_to("users/getToken"))
        lookups = len(fake.requests_to("payments/imp_"))
        print(f"--- {label}")
        print(f"syncs:            {len(results)} with {args.threads} threads, gateway delay {args.delay * 1000:.0f} ms")
        print(f"outcomes:         {outcomes}")
        print(f"throughput:       {len(results) / wall:.1f} syncs/s")
        print(
            f"latency:          p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
            f"p99 {percentile(latencies, 99):.0f} ms"
        )
        per_sync = f"{lookups / len(results):.2f} lookups + {tokens / len(results):.3f} token requests"
        print(f"gateway calls:    {per_sync} per sync")

    print(f"database:         {connection.vendor}")
    run("first sync (pays and confirms each booking)")
    run("second sync (duplicate webhooks: nothing to do)")
    fake.stop()


if __name__ == "__main__":
    main()
