"""Benchmark: render the seat map page of a 2,000-seat performance.

Usage (from the repository root):
    .venv/bin/python bench/seatmap_render.py [--runs 200]
    DATABASE_URL=mysql://root@127.0.0.1:3306/ticketing_bench .venv/bin/python bench/seatmap_render.py

With no DATABASE_URL it uses a fresh SQLite file in a temporary folder. It migrates,
loads the demo data (the 2,112-seat concert hall plus a 300-place standing zone), then
times full requests through Django's test client (URL routing, middleware, view,
selectors, SVG drawing and template) and prints the median, p95, the query count and
the page size. Results are recorded in docs/benchmarks.md.
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
    client = Client(HTTP_ACCEPT_LANGUAGE="ko")

    for _ in range(10):  # warm caches, template loading, translations
        client.get(url)
    timings = []
    for _ in range(args.runs):
        reset_queries()
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)

    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"database:        {connection.vendor} {connection.Database.__name__}")
    print(f"places drawn:    {seats} ({performance.layout.seats.count()} seats + standing)")
    print(f"runs:            {args.runs}")
    print(f"median:          {statistics.median(timings):.1f} ms")
    print(f"p95:             {p95:.1f} ms")
    print(f"min / max:       {timings[0]:.1f} / {timings[-1]:.1f} ms")
    print(f"queries:         {len(ctx.captured_queries)}")
    print(f"page size:       {len(response.content) / 1024:.0f} KiB (uncompressed)")


if __name__ == "__main__":
    main()
