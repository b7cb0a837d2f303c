"""Benchmark: the CPU one hold and one "seat taken" answer cost, Django and MariaDB apart.

Usage (from the repository root; MariaDB on 127.0.0.1:3306 and Redis on 6379):
    .venv/bin/python bench/hold_cost.py [--requests 400] [--rounds 3]

bench/flash_sale.py says what the hold path is worth under a burst, but a burst's
holds per second drift by 10-25 % from minute to minute on a shared machine, more than
most changes to the path save. This runs the hold request through the whole WSGI
application in this process (middleware, the session from Redis, the signed-in user,
the view, the service, MariaDB), one request at a time, and reports what each costs: this
process's CPU (Django, mysqlclient, redis-py) and MariaDB's (its threads' run time,
read from /proc). Each round holds `--requests` times three seats, each hold by one of
200 customers, then asks for the same seats again (every answer a JSON 409, "seat
taken"), then frees them. Run it before and after a change, a few times each: the
medians of the two usually differ by less than a few percent when the code does not.
Results are recorded in docs/benchmarks.md ("Cost of one answer").
"""

import argparse
import io
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flash_sale

SEATS_PER_HOLD = 3


def mariadb_cpu_ms(pids: list[int]) -> float:
    """Run time of every MariaDB thread so far, in ms (scheduler's nanoseconds)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError):
                continue  # a thread that ended meanwhile
    return total / 1e6


def wsgi_post(application, path: str, fields: dict, cookies: str) -> str:
    """POST `fields` to `path` as the seat map's script does; the status line."""
    body = urlencode(fields, doseq=True).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ORIGIN": "http://127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "HTTP_COOKIE": cookies,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    status = []
    chunks = application(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return status[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="holds per round (default 400)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306")
    flash_sale.add_mysql_socket_option(parser)
    parser.add_argument("--database", default="ticketing_holdcost")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    args.customers, args.warmup_users, args.limit = 200, 0, 4

    os.environ.update(flash_sale.server_env(args))
    flash_sale.create_database(args)
    try:
        world = flash_sale.prepare(args)
        from django.db import connections

        from events.models import Event
        from reservations.models import InventoryItem, Reservation
        from ticketing.wsgi import application

        logging.disable(logging.WARNING)  # Django logs every 409; the log is not what is measured
        # Each customer holds several times a round; the limit is not what is measured.
        Event.objects.filter(performances=world.performance_id).update(ticket_limit=30_000)
        seats = [item for row in world.rows for item in row.items]
        holds = min(args.requests, len(seats) // SEATS_PER_HOLD)
        csrf = "b" * 32
        cookies = [f"sessionid={key}; csrftoken={csrf}" for _, key in world.sessions[: args.customers]]
        database = flash_sale.database_pids()

        def ask(k: int) -> str:
            chosen = seats[SEATS_PER_HOLD * k : SEATS_PER_HOLD * (k + 1)]
            fields = {"token": uuid.uuid4().hex, "items": chosen, "csrfmiddlewaretoken": csrf}
            return wsgi_post(application, world.hold_path, fields, cookies[k % len(cookies)])

        def free_all() -> None:
            Reservation.objects.filter(performance=world.performance_id).update(status=Reservation.Status.RELEASED)
            InventoryItem.objects.filter(performance=world.performance_id).update(
                status=InventoryItem.Status.AVAILABLE, reservation=None, held_until=None
            )

        def timed(count: int, expect: str) -> tuple[float, float]:
            """Django's and MariaDB's CPU per request, in microseconds."""
            mariadb, own = mariadb_cpu_ms(database), time.process_time()
            statuses = [ask(k) for k in range(count)]
            own, mariadb = time.process_time() - own, mariadb_cpu_ms(database) - mariadb
            wrong = {s for s in statuses if not s.startswith(expect)}
            if wrong:
                sys.exit(f"FAILED: expected {expect} answers, got {wrong}")
            return 1e6 * own / count, 1e3 * mariadb / count

        for k in range(min(40, holds)):  # warm up: templates, translations, connections
            ask(k)
        free_all()
        print(f"machine speed: fixed loop {flash_sale.calibration_ms():.0f} ms (lower is faster)")
        print(f"{holds} holds of {SEATS_PER_HOLD} seats and {holds} 'seat taken' answers a round, one at a time")
        print("round  hold: Django us  MariaDB us   409: Django us  MariaDB us")
        results = []
        for i in range(args.rounds):
            hold = timed(holds, "200")
            taken = timed(holds, "409")
            free_all()
            results.append((*hold, *taken))
            print(f"{i + 1:5d}  {hold[0]:15.0f}  {hold[1]:10.0f}   {taken[0]:14.0f}  {taken[1]:10.0f}")
        medians = [statistics.median(column) for column in zip(*results, strict=True)]
        print("median {:15.0f}  {:10.0f}   {:14.0f}  {:10.0f}".format(*medians))
        connections.close_all()
    finally:
        flash_sale.drop_database(args)


if __name__ == "__main__":
    main()
