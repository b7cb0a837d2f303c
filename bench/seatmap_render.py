"""Benchmark: render the seat map page of a 2,000-seat performance.

Usage (from the repository root):
    .venv/bin/python bench/seatmap_render.py [--runs 200]
    DATABASE_URL=mysql://root@127.0.0.1:3306/ticketing_bench .venv/bin/python bench/seatmap_render.py

With no DATABASE_URL it uses a fresh SQLite file in a temporary folder. It migrates,
loads the demo data (the 2,112-seat concert hall plus a 300-place standing zone), then
times full requests through Django's test client (URL routing, middleware, view,
selectors, SVG drawing and template), first for an anonymous visitor, then for a
signed-in customer (the performance is on sale, so their seats are selectable), and
prints the median wall and CPU time, p95, the query count and the page size. Each
process keeps the hall's places for TICKETING_SEAT_MAP_PLACES_SECONDS, so the timed runs
show the steady state. Results are recorded in docs/benchmarks.md.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="ticketing-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ["DEBUG"] = "1"  # plain static storage; DEBUG does not slow the view itself
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from events.models import Performance

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    performance = (
        Performance.objects.filter(event__slug="starlight-2026")
        .select_related("layout", "event")
        .order_by("id")
        .first()
    )
    url = performance.get_absolute_url()
    seats = performance.inventory.count()
    from django.contrib.auth import get_user_model

    customer = get_user_model().objects.create_user(email="seatmap-bench@bench.invalid", password=None)
    print(f"database:        {connection.vendor} {connection.Database.__name__}")
    print(f"places drawn:    {seats} ({performance.layout.seats.count()} seats + standing)")
    print(f"runs:            {args.runs} per visitor")
    for who in ("anonymous", "signed in"):
        client = Client(HTTP_ACCEPT_LANGUAGE="ko")
        if who == "signed in":  # on sale, so the seats are selectable checkboxes
            client.force_login(customer)
        for _ in range(10):  # warm caches, template loading, translations
            client.get(url)
        timings, cpu = [], []
        for _ in range(args.runs):
            reset_queries()
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(
            f"{who:<16} median {statistics.median(timings):.1f} ms (CPU {statistics.median(cpu):.1f} ms), "
            f"p95 {p95:.1f} ms, min/max {timings[0]:.1f}/{timings[-1]:.1f} ms, "
            f"{len(ctx.captured_queries)} queries, {len(response.content) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
