"""Helpers shared by the apps' tests."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


def race(worker, count: int):
    """Run `worker(i)` in `count` threads released together; return results or errors.

    Each thread has its own database connection (Django's are per thread), so these are
    real concurrent transactions; exceptions are returned, for the test to assert on.
    """
    barrier = threading.Barrier(count, timeout=30)

    def run(i):
        try:
            barrier.wait()
            return worker(i)
        except Exception as exc:  # collected and asserted on by the test
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
