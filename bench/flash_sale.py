"""Benchmark: a flash sale. 200 customers race for the seats of a 2,000-seat performance.

Usage (from the repository root; needs MariaDB on 127.0.0.1:3306 and Redis on 6379):
    .venv/bin/python bench/flash_sale.py [--customers 200] [--rounds 3] [--workers 2] [--threads 4] [--keep]
    .venv/bin/python bench/flash_sale.py --server gunicorn    # gunicorn's sync workers (2 x cores + 1)
    .venv/bin/python bench/flash_sale.py --disjoint          # nobody wants another's seats: no conflicts
    .venv/bin/python bench/flash_sale.py --arrival-rate 50   # customers arrive 50 a second, not all at once
    .venv/bin/python bench/flash_sale.py --waiting-room 9000 # sales open behind a waiting room (150 a second)
    .venv/bin/python bench/flash_sale.py --form              # post like a browser without JavaScript

One command does everything:

1. creates the database `ticketing_flash` (utf8mb4; it must not exist yet), migrates it,
   loads the demo data (`seed_demo`), runs `collectstatic` (DEBUG=0 uses the manifest
   storage, and a 409 answer re-renders the seat map page), creates the customers and a
   signed-in session for each straight in the session store (as
   reservations/tests/test_concurrency.py does), and groups the seats of the first
   "starlight-2026" performance (2,112 seats + 300 standing) into rows of adjacent seats;
2. starts the web server (Granian, as in production; `--server gunicorn` for gunicorn) on
   127.0.0.1:<free port> with production settings (DEBUG=0,
   SECURE_SSL_REDIRECT=0 because there is no TLS proxy in front, CONN_MAX_AGE=60, Redis
   cache), `--workers` processes of `--threads` threads (gunicorn: sync workers, or gthread
   with `--threads` > 1);
3. warms every worker up, then releases all customers at the same instant. Each customer
   wants 2-4 adjacent seats, preferring the better grades (VIP 4 : R 3 : S 2 : A 1), and
   POSTs the hold form (fresh token, CSRF cookie + field, Origin header) over plain
   HTTP/1.1 from an asyncio client on uvloop (one connection per request, no think time) the way
   the seat map's script does (Accept: application/json). With `--preconnect` each
   customer's first request goes over a connection opened before the gate. A 200 naming the booking is a
   hold; a 409 lists the seats just taken and every seat gone since the map was drawn,
   which the customer greys out before trying other seats (up to `--attempts` tries).
   With `--form` it posts like a browser without JavaScript: a 302 is a hold and a 409
   re-renders the whole seat map page, which the customer reads instead. Anything else
   (other 4xx, 5xx, a 409 without the "just taken" answer, timeouts, connection errors)
   is an error;
4. checks the database for oversold seats after every round (no inventory item in two
   live reservations, every line's item points back at its reservation, held items ==
   lines of held reservations == seats the customers were told they hold), resets the
   performance for the next round, counts the queries of one hold request of each kind
   in-process, prints the results, stops the server and drops the database (unless
   `--keep`). Exits 1 if any seat was oversold, 2 if there were errors.

Holds/s is successful holds over the wall time of the burst (first request sent to last
answer read); latencies are of every hold request, connect to last byte, measured by the
client, which shares the two cores with the server and MariaDB (on uvloop, which costs it
about half the CPU of asyncio's own loop; TICKETING_BENCH_LOOP=asyncio for that one). CPU is
counted from the gate opening to the last answer. The machine's speed is printed as the
time of a fixed loop before and after the rounds. Results are recorded in docs/benchmarks.md.
"""

import argparse
import asyncio
import functools
import itertools
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "starlight-2026"
GRADE_WEIGHTS = {"VIP": 4, "R": 3, "S": 2, "A": 1}
TAKEN_RE = re.compile(rb'class="seat taken[^"]*"[^>]*?data-item="(\d+)"')
JUST_TAKEN = b"just taken"  # the English message of services.SeatsTaken (Accept-Language: en)


# --- Setup ----------------------------------------------------------------------


def server_env(args) -> dict[str, str]:
    """The production-like environment shared by the web server and this process.

    Shared because a session's auth hash is keyed with SECRET_KEY: the sessions this
    process writes must verify in the workers.
    """
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "DATABASE_URL": database_url(args),
            "REDIS_URL": args.redis_url,
            "DEBUG": "0",
            "SECRET_KEY": "flash-sale-bench-" + secrets.token_hex(24),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "CONN_MAX_AGE": "60",
            "LOG_LEVEL": "INFO",
            # Required with DEBUG=0; holding seats never talks to the payment API, and
            # should anything try, it reaches a closed local port, not the real API.
            "IAMPORT_API_KEY": "flash-sale-bench-unused",
            "IAMPORT_API_SECRET": "flash-sale-bench-unused",
            "IAMPORT_API_URL": "http://127.0.0.1:9/",
        }
    )
    return env


def database_url(args) -> str:
    if not args.mysql_socket:
        return f"{args.mysql_url.rstrip('/')}/{args.database}"
    # The client library takes the socket only for the host "localhost"; Django's
    # backend passes the URL's options on to it.
    url = urlsplit(args.mysql_url)
    user = f"{url.username or 'root'}{':' + url.password if url.password else ''}"
    return f"mysql://{user}@localhost/{args.database}?unix_socket={args.mysql_socket}"


def add_mysql_socket_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mysql-socket",
        help="reach MariaDB through this Unix socket (e.g. /run/mysqld/mysqld.sock) instead of TCP",
    )


def mysql_admin(args):
    import MySQLdb

    url = urlsplit(args.mysql_url)
    if args.mysql_socket:
        where = {"host": "localhost", "unix_socket": args.mysql_socket}
    else:
        where = {"host": url.hostname or "127.0.0.1", "port": url.port or 3306}
    return MySQLdb.connect(user=url.username or "root", passwd=url.password or "", **where)


def create_database(args) -> None:
    conn = mysql_admin(args)
    try:
        cursor = conn.cursor()
        cursor.execute("SHOW DATABASES LIKE %s", [args.database])
        if cursor.fetchone():
            sys.exit(f"database {args.database} already exists (a --keep run?); drop it first")
        cursor.execute(f"CREATE DATABASE `{args.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def drop_database(args) -> None:
    conn = mysql_admin(args)
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{args.database}`")
    finally:
        conn.close()


@dataclass
class Row:
    """A run of adjacent seats (same section and row, no aisle in between), by x."""

    grade: str
    items: list[int]


@dataclass
class World:
    performance_id: int
    hold_path: str
    page_path: str
    rows: list[Row]
    seat_count: int
    sessions: list[tuple[int, str]]  # (user id, session key), customers first, then warm-up users
    limit: int


def prepare(args) -> World:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.core.management import call_command

    from events.models import Event, Performance
    from reservations.models import InventoryItem

    with open(os.devnull, "w") as quiet:
        call_command("migrate", verbosity=0, stdout=quiet)
        call_command("seed_demo", stdout=quiet)
        call_command("collectstatic", interactive=False, verbosity=0, stdout=quiet)
    Event.objects.filter(slug=SLUG).update(ticket_limit=args.limit)
    performance = Performance.objects.filter(event__slug=SLUG).select_related("event").order_by("id").first()

    User = get_user_model()
    count = args.customers + args.warmup_users
    users = [User(email=f"flash{i:04d}@bench.invalid", name=f"Flash {i}") for i in range(count)]
    for user in users:
        user.set_unusable_password()  # no PBKDF2: the sessions below sign them in
    User.objects.bulk_create(users)
    sessions = []
    for user in User.objects.filter(email__endswith="@bench.invalid").order_by("email"):
        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "accounts.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save()
        sessions.append((user.pk, store.session_key))

    by_row: dict[tuple[int, str], list[tuple[int, int, str]]] = defaultdict(list)
    for item_id, section_id, row, x, grade in InventoryItem.objects.filter(
        performance=performance, seat__isnull=False
    ).values_list("id", "seat__section_id", "seat__row", "seat__x", "price_grade__code"):
        by_row[section_id, row].append((x, item_id, grade))
    rows = []
    for seats in by_row.values():
        seats.sort()
        pitch = min((b[0] - a[0] for a, b in itertools.pairwise(seats)), default=0)
        run = [seats[0]]
        for prev, seat in itertools.pairwise(seats):
            if seat[0] - prev[0] > pitch:  # an aisle
                rows.append(Row(run[0][2], [s[1] for s in run]))
                run = []
            run.append(seat)
        rows.append(Row(run[0][2], [s[1] for s in run]))
    from django.db import connections

    connections.close_all()
    return World(
        performance_id=performance.pk,
        hold_path=f"/events/{SLUG}/performances/{performance.pk}/hold/",
        page_path=performance.get_absolute_url(),
        rows=rows,
        seat_count=sum(len(r.items) for r in rows),
        sessions=sessions,
        limit=performance.event.ticket_limit,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_shape(args) -> None:
    """Fill in --workers and --threads left unset: Granian one process per core with four
    threads (as in the Dockerfile), gunicorn 2 x cores + 1 sync workers."""
    cores = os.cpu_count() or 1
    if args.workers is None:
        args.workers = cores if args.server == "granian" else 2 * cores + 1
    if args.threads is None:
        args.threads = 4 if args.server == "granian" else 1


def start_server(args, env, port: int, log_path: Path) -> subprocess.Popen:
    """The web server as production runs it (Granian, as the Dockerfile starts it), or
    gunicorn's sync workers for comparison (`--server gunicorn`)."""
    if args.server == "granian":
        command = [
            *(sys.executable, "-m", "granian", "ticketing.wsgi:application", "--interface", "wsgi"),
            *("--host", "127.0.0.1", "--port", str(port), "--backlog", "2048"),
            *("--workers", str(args.workers), "--blocking-threads", str(args.threads)),
            *("--workers-kill-timeout", "10"),
        ]
    else:
        command = [
            *(sys.executable, "-m", "gunicorn", "ticketing.wsgi:application", "--bind", f"127.0.0.1:{port}"),
            *("--workers", str(args.workers), "--timeout", "60", "--graceful-timeout", "10"),
            *("--backlog", "2048", "--worker-tmp-dir", "/dev/shm"),
        ]
        if args.threads > 1:
            command += ["--worker-class", "gthread", "--threads", str(args.threads)]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # graceful: finish requests, close connections
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log.close()


# --- Where the CPU goes (read from /proc, Linux only) ----------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def worker_pids(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def database_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("mariadbd", "mysqld"):
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


def machine_seconds() -> tuple[float, float]:
    """CPU time the whole machine (all cores) spent busy, and the time the hypervisor
    gave this virtual machine's cores to others ("steal"), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def calibration_ms(repeat: int = 3) -> float:
    """CPU milliseconds of a fixed pure-Python loop, the fastest of `repeat`.

    This machine's speed drifts by a factor of two from one hour to the next (a shared
    host): results of runs far apart compare only through this figure.
    """
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i * i % 7
        best = min(best, time.process_time() - start)
    return best * 1000


def cpu_snapshot(process: subprocess.Popen, database: list[int]) -> dict[str, float]:
    return {
        "server": cpu_seconds([process.pid, *worker_pids(process.pid)]),
        "mariadb": cpu_seconds(database),
        "client": time.process_time(),
        **dict(zip(("machine", "steal"), machine_seconds(), strict=True)),
    }


# --- A minimal HTTP/1.1 client ----------------------------------------------------


def run_client(coroutine):
    """Run the load generator's coroutine; on uvloop unless TICKETING_BENCH_LOOP=asyncio.

    The client shares the two cores with the server and MariaDB, so each of its
    milliseconds is one the server does not get.
    """
    if os.environ.get("TICKETING_BENCH_LOOP") == "asyncio":
        return asyncio.run(coroutine)
    import uvloop

    return uvloop.run(coroutine)


@dataclass
class Answer:
    status: int  # 0 for a connection error or timeout
    headers: dict[str, str]
    body: bytes
    seconds: float
    error: str = ""


async def request(
    port: int,
    method: str,
    path: str,
    *,
    cookies: str,
    body: bytes = b"",
    timeout=60.0,
    accept="text/html",
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
) -> Answer:
    """One request on a new connection, or on `connection` (opened earlier, used once)."""
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Cookie: {cookies}",
        "Accept-Language: en",
        f"Accept: {accept}",
        "User-Agent: flash-sale-bench",
        "Connection: close",
    ]
    if method == "POST":
        head += [
            f"Origin: http://127.0.0.1:{port}",
            f"Referer: http://127.0.0.1:{port}/",
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}",
        ]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    start = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = connection or await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                content = await reader.readexactly(int(headers["content-length"]))
            else:
                content = await reader.read()
        return Answer(status, headers, content, time.perf_counter() - start)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        return Answer(0, {}, b"", time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()


# --- The customers ----------------------------------------------------------------


@dataclass
class Attempt:
    kind: str  # "hold", "conflict" or "error"
    status: int
    seconds: float
    detail: str = ""


@dataclass
class Customer:
    index: int
    session_key: str
    rng: random.Random
    block: Row | None = None  # --disjoint: the only seats this customer wants
    attempts: list[Attempt] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    code: str = ""
    outcome: str = "gave up"
    line_seconds: float = 0.0  # --waiting-room: from arrival until let in
    line_requests: int = 0


def choose(rows: list[Row], weights: list[int], free: set[int], rng: random.Random, want: int) -> list[int]:
    """`want` adjacent seats that look free in this customer's snapshot, or fewer."""
    for quantity in range(want, 0, -1):
        for _ in range(30):
            row = rng.choices(rows, weights)[0]
            starts = [
                i for i in range(len(row.items) - quantity + 1) if all(s in free for s in row.items[i : i + quantity])
            ]
            if starts:
                start = rng.choice(starts)
                return row.items[start : start + quantity]
        for row in rows:  # the preferred rows look full: anything at all
            for i in range(len(row.items) - quantity + 1):
                if all(s in free for s in row.items[i : i + quantity]):
                    return row.items[i : i + quantity]
    return []


def private_blocks(rows: list[Row], count: int) -> list[Row]:
    """`count` blocks of 4 adjacent seats, no seat in two blocks (for --disjoint)."""
    blocks = [Row(row.grade, row.items[i : i + 4]) for row in rows for i in range(0, len(row.items) - 3, 4)]
    if len(blocks) < count:
        sys.exit(f"--disjoint needs {count} blocks of 4 seats; the hall has {len(blocks)}")
    return random.Random(0).sample(blocks, count)


async def customer_run(customer: Customer, world: World, port: int, go: asyncio.Event, args) -> None:
    rows = [customer.block] if customer.block else world.rows
    weights = [GRADE_WEIGHTS.get(row.grade, 1) for row in rows]
    free = {item for row in rows for item in row.items}  # the map as it was when sales opened
    csrf = secrets.token_urlsafe(24)[:32].replace("-", "a").replace("_", "b")
    cookies = f"sessionid={customer.session_key}; csrftoken={csrf}"
    want = customer.rng.randint(2, 4)
    # --preconnect: the first hold goes over a connection opened before sales open, as a
    # browser's goes over the one it loaded the seat map on (the handshake is then not
    # part of the rush, and on a real site it is made on the customer's machine).
    connection = await asyncio.open_connection("127.0.0.1", port) if args.preconnect else None
    await go.wait()
    if args.arrival_rate:  # customers arrive one after another instead of all at once
        await asyncio.sleep(customer.index / args.arrival_rate)
    if args.waiting_room:
        cookies = await wait_in_line(customer, world, port, cookies)
        if cookies is None:
            return
    token, seats = None, []
    for _ in range(args.attempts):
        if token is None:  # a new attempt (after a lost connection: the same seats and token again)
            seats = choose(rows, weights, free, customer.rng, want)
            if not seats:
                customer.outcome = "sold out"
                return
            token = uuid.uuid4().hex
        body = urlencode({"token": token, "items": seats, "csrfmiddlewaretoken": csrf}, doseq=True).encode()
        accept = "application/json" if args.json else "text/html"
        answer = await request(
            port, "POST", world.hold_path, cookies=cookies, body=body, accept=accept, connection=connection
        )
        connection = None
        location = answer.headers.get("location", "")
        if args.json and answer.status in (200, 409) and answer.body.startswith(b"{"):
            # What the seat map's script gets: a redirect, or the ids of the seats just taken.
            data = json.loads(answer.body)
            if answer.status == 200 and "/my/bookings/" in data.get("redirect", ""):
                customer.attempts.append(Attempt("hold", 200, answer.seconds))
                customer.held, customer.outcome = seats, "held"
                customer.code = data["redirect"].rstrip("/").rsplit("/", 1)[-1]
                return
            if answer.status == 409 and data.get("taken"):
                customer.attempts.append(Attempt("conflict", 409, answer.seconds))
                # The script greys out every seat taken since the page was drawn.
                free -= set(data.get("unavailable", ())) | set(data["taken"]) | set(seats)
                token = None
                continue
        if answer.status == 302 and "/my/bookings/" in location:
            customer.attempts.append(Attempt("hold", 302, answer.seconds))
            customer.held, customer.code, customer.outcome = seats, location.rstrip("/").rsplit("/", 1)[-1], "held"
            return
        if answer.status == 409 and JUST_TAKEN in answer.body:
            customer.attempts.append(Attempt("conflict", 409, answer.seconds))
            # The answer redraws the map: what this customer now believes is free.
            free -= {int(m) for m in TAKEN_RE.findall(answer.body)}
            free -= set(seats)  # at least one of them was taken; try elsewhere
            token = None  # a new form, a new token
            if args.think_ms:
                await asyncio.sleep(customer.rng.uniform(0.5, 1.5) * args.think_ms / 1000)
            continue
        detail = answer.error or f"{answer.status} {location or answer.body[:200]!r}"
        customer.attempts.append(Attempt("error", answer.status, answer.seconds, detail))
        if answer.status != 0:
            customer.outcome = "refused"
            return
        # A lost connection: resending the same form is safe (a repeated token finds the hold).
    customer.outcome = "gave up"


async def wait_in_line(customer: Customer, world: World, port: int, cookies: str) -> str | None:
    """Take a number in the waiting room (a signed cookie) and wait out the time it
    names, as static/js/waiting-room.js counts down. Returns the cookies with the
    ticket, or None (an error recorded) if the line answers oddly."""
    arrived = time.perf_counter()
    answer = await request(port, "GET", world.page_path + "waiting/", cookies=cookies, accept="application/json")
    customer.line_requests += 1
    try:
        data = json.loads(answer.body) if answer.status == 200 else None
    except ValueError:
        data = None
    if data is None:
        detail = answer.error or f"waiting room: {answer.status} {answer.body[:200]!r}"
        customer.attempts.append(Attempt("error", answer.status, answer.seconds, detail))
        customer.outcome = "refused"
        return None
    ticket = answer.headers.get("set-cookie", "").split(";", 1)[0]
    if ticket:
        cookies += f"; {ticket}"
    if not data["admitted"]:
        # The page counts down to the turn, then goes to the seat map; the map and the
        # hold check the ticket (a hold too early is refused: an error here).
        await asyncio.sleep(data["wait_seconds"] + 0.02)
    customer.line_seconds = time.perf_counter() - arrived
    return cookies


async def warm_up(world: World, port: int, rounds: int) -> None:
    """Template loading, translations, DB connections: every worker, a few times."""
    _, key = world.sessions[-1]  # the warm-up user, not one of the customers
    csrf = "w" * 32
    for _ in range(rounds):
        cookies = f"sessionid={key}; csrftoken={csrf}"
        page = await request(port, "GET", world.page_path, cookies=cookies)
        assert page.status == 200, (page.status, page.error, page.body[:300])
        # An empty selection runs the whole hold view and answers 400 without holding.
        body = urlencode({"token": uuid.uuid4().hex, "csrfmiddlewaretoken": csrf}).encode()
        answer = await request(port, "POST", world.hold_path, cookies=cookies, body=body)
        assert answer.status == 400, (answer.status, answer.error, answer.body[:300])


async def wait_ready(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    answer = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        answer = await request(port, "GET", "/", cookies="", timeout=5)
        if answer.status == 200:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer in time; last: {answer.status} {answer.error} {answer.body[:300]!r}")


async def burst(world: World, port: int, args, seed: int, snapshot) -> tuple[list[Customer], float, dict, dict]:
    """Run one round; returns the customers, the wall time from the gate opening to the
    last answer, and `snapshot()` (CPU counters) taken at both instants, so that the
    customers' own setup before the gate is not counted as part of the burst."""
    blocks = private_blocks(world.rows, args.customers) if args.disjoint else [None] * args.customers
    customers = [
        Customer(i, key, random.Random(seed * 100_003 + i), blocks[i])
        for i, (_, key) in enumerate(world.sessions[: args.customers])
    ]
    go = asyncio.Event()
    tasks = [asyncio.create_task(customer_run(c, world, port, go, args)) for c in customers]
    await asyncio.sleep(0.2)  # every customer is waiting at the gate
    before = snapshot()
    start = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    return customers, wall, before, snapshot()


# --- Checks and results -------------------------------------------------------------


def check_database(world: World, customers: list[Customer]) -> dict[str, int]:
    """Oversold seats and bookkeeping mismatches; every value must be 0."""
    from django.db.models import Count, F, Q
    from django.utils import timezone

    from reservations.models import InventoryItem, Reservation, ReservationLine

    now = timezone.now()
    live = Q(reservation__status=Reservation.Status.CONFIRMED) | Q(
        reservation__status__in=Reservation.LIVE_HOLD_STATUSES, reservation__expires_at__gt=now
    )
    lines = ReservationLine.objects.filter(reservation__performance_id=world.performance_id)
    oversold = lines.filter(live).values("item").annotate(n=Count("id")).filter(n__gt=1).count()
    astray = lines.filter(live).exclude(item__reservation_id=F("reservation_id")).count()
    held_items = InventoryItem.objects.filter(performance_id=world.performance_id, status="held").count()
    held_lines = lines.filter(reservation__status=Reservation.Status.HELD).count()
    told = sum(len(c.held) for c in customers)
    codes = {c.code for c in customers if c.code}
    in_db = set(
        Reservation.objects.filter(performance_id=world.performance_id, status="held").values_list("code", flat=True)
    )
    return {
        "oversold seats (item in 2+ live reservations)": oversold,
        "lines whose item points elsewhere": astray,
        "held items - lines of held reservations": abs(held_items - held_lines),
        "held items - seats customers were told": abs(held_items - told),
        "reservations not matching 302 answers": len(codes ^ in_db),
    }


def reset(world: World) -> None:
    """Put every place of the performance back on sale and forget the burst's bookings.

    Plain SQL on the bench's own database: the burst creates only reservations, their
    lines and their transitions, and the ORM's cascade would also visit the tables of
    every app that points at reservations.
    """
    from django.db import connection, connections, transaction

    from reservations.models import InventoryItem, Reservation, ReservationLine, ReservationTransition

    tables = {m.__name__: connection.ops.quote_name(m._meta.db_table) for m in (Reservation, ReservationLine)}
    transitions = connection.ops.quote_name(ReservationTransition._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        InventoryItem.objects.filter(performance_id=world.performance_id).update(
            status="available", held_until=None, reservation=None
        )
        pk = [world.performance_id]
        mine = f"SELECT id FROM {tables['Reservation']} WHERE performance_id = %s"
        cursor.execute(f"DELETE FROM {tables['ReservationLine']} WHERE reservation_id IN ({mine})", pk)
        cursor.execute(f"DELETE FROM {transitions} WHERE reservation_id IN ({mine})", pk)
        cursor.execute(f"DELETE FROM {tables['Reservation']} WHERE performance_id = %s", pk)
    connections.close_all()


def open_sale_with_waiting_room(world: World, per_minute: int) -> None:
    """Sales open now, behind a waiting room: each round starts a new line (the line is
    keyed by the opening time)."""
    from django.db import connections
    from django.utils import timezone

    from events.models import Performance

    Performance.objects.filter(pk=world.performance_id).update(
        waiting_room_rate=per_minute, sales_open_at=timezone.now()
    )
    connections.close_all()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarise(customers: list[Customer], wall: float) -> dict:
    attempts = [a for c in customers for a in c.attempts]
    ms = [a.seconds * 1000 for a in attempts]
    by_kind = defaultdict(list)
    for a in attempts:
        by_kind[a.kind].append(a.seconds * 1000)
    holds = sum(1 for c in customers if c.outcome == "held")
    return {
        "wall": wall,
        "holds": holds,
        "seats": sum(len(c.held) for c in customers),
        "holds_per_s": holds / wall,
        "requests": len(attempts),
        "requests_per_s": len(attempts) / wall,
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "hold_p50": statistics.median(by_kind["hold"]) if by_kind["hold"] else 0,
        "conflict_p50": statistics.median(by_kind["conflict"]) if by_kind["conflict"] else 0,
        "conflicts": len(by_kind["conflict"]),
        "errors": len(by_kind["error"]),
        "error_kinds": Counter(a.detail[:120] for a in attempts if a.kind == "error"),
        "outcomes": Counter(c.outcome for c in customers),
        "tries": Counter(len(c.attempts) for c in customers),
        "line_p50": percentile([c.line_seconds for c in customers], 50),
        "line_max": max(c.line_seconds for c in customers),
        "line_requests": sum(c.line_requests for c in customers),
    }


def count_queries(world: World, repeat: int = 5) -> dict[str, tuple[int, float, float, int]]:
    """Queries, wall and CPU ms (median of `repeat`) of each kind of hold answer, in-process.

    Django's test client through the whole middleware stack, no web server and no network,
    after the load: the performance has the burst's holds on it.
    """
    import logging

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from reservations.models import InventoryItem

    logging.getLogger("django.request").setLevel(logging.ERROR)  # no "Conflict:" lines here
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    client.cookies["sessionid"] = world.sessions[-1][1]
    assert client.get(world.page_path).status_code == 200  # loads the middleware once
    items = InventoryItem.objects.filter(performance_id=world.performance_id, seat__isnull=False)
    free = list(items.filter(status="available").order_by("-id").values_list("id", flat=True)[: 4 * repeat])
    taken = list(items.filter(status="held").order_by("id").values_list("id", flat=True)[:2])
    fresh = iter(world.sessions[-2 : -2 - 2 * repeat : -1])  # one customer per hold: the limit counts
    kinds = (
        ("409 seat taken, JSON", 409, "application/json"),
        ("200 hold, JSON", 200, "application/json"),
        ("409 seat taken, full page", 409, "text/html"),
        ("302 hold, plain form", 302, "text/html"),
    )
    results = {}
    for name, expected, accept in kinds:
        runs = []
        for _ in range(repeat):
            if expected == 409:
                chosen = taken
            else:
                client.cookies["sessionid"] = next(fresh)[1]
                chosen, free = free[:2], free[2:]
            with CaptureQueriesContext(connection) as ctx:
                wall, cpu = time.perf_counter(), time.process_time()
                response = client.post(
                    world.hold_path, {"token": uuid.uuid4().hex, "items": chosen}, HTTP_ACCEPT=accept
                )
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert response.status_code == expected, response.status_code
            runs.append((len(ctx.captured_queries), wall * 1000, cpu * 1000, len(response.content)))
        results[name] = tuple(statistics.median(run[k] for run in runs) for k in range(4))
    return results


def print_results(args, world: World, rounds: list[dict], checks: list[dict], queries) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    if args.server == "granian":
        worker = f"{args.workers} workers x {args.threads} threads"
    elif args.threads == 1:
        worker = f"{args.workers} sync workers"
    else:
        worker = f"{args.workers} gthread workers x {args.threads}"
    print(f"performance:   {SLUG} #{world.performance_id}, {world.seat_count} seats, limit {world.limit} per customer")
    print(f"server:        {args.server}, {worker}; MariaDB {version}; {os.cpu_count()} cores")
    wants = "each in a block of 4 nobody else wants (--disjoint)" if args.disjoint else "best grades preferred"
    arrive = f"arriving at {args.arrival_rate:g}/s" if args.arrival_rate else "at once"
    if args.waiting_room:
        arrive += f", through a waiting room letting in {args.waiting_room}/min"
    print(f"customers:     {args.customers} {arrive}, 2-4 adjacent seats each, {wants}, up to {args.attempts} tries")
    client = "plain form, no JavaScript (--form)" if args.form else "as the seat map's script (JSON answers)"
    if args.preconnect:
        client += ", the first hold over a connection opened before the gate (--preconnect)"
    print(f"posting:       {client}")
    before, after = args.calibration
    print(f"machine speed: fixed loop {before:.0f} ms before the rounds, {after:.0f} ms after (lower is faster)")
    print()
    head = (
        "round  wall s  holds  seats  holds/s  req/s   p50 ms  p95 ms  p99 ms  max ms  conflicts  errors  oversold"
        "  other CPU s"
    )
    print(head)
    for i, (r, c) in enumerate(zip(rounds, checks, strict=True), 1):
        print(
            f"{i:>5}  {r['wall']:6.2f}  {r['holds']:5d}  {r['seats']:5d}  {r['holds_per_s']:7.0f}  "
            f"{r['requests_per_s']:5.0f}  {r['p50']:6.0f}  {r['p95']:6.0f}  {r['p99']:6.0f}  {r['max']:6.0f}  "
            f"{r['conflicts']:9d}  {r['errors']:6d}  {sum(c.values()):8d}  {r['cpu']['other']:11.2f}"
        )
    print("(other CPU s: busy time of processes other than the server, MariaDB and this client during the burst;")
    print(" more than a few tenths of a second means something else was running and the round is not clean)")
    print()
    for i, r in enumerate(rounds, 1):
        tries = ", ".join(f"{n} try: {k}" if n == 1 else f"{n} tries: {k}" for n, k in sorted(r["tries"].items()))
        print(
            f"round {i}: median 302 {r['hold_p50']:.0f} ms, median 409 {r['conflict_p50']:.0f} ms; "
            f"outcomes {dict(r['outcomes'])}; {tries}"
        )
        cpu = ", ".join(f"{name} {seconds:.2f}" for name, seconds in r["cpu"].items() if name != "steal")
        print(
            f"    CPU seconds during the burst: {cpu} (of {r['wall'] * (os.cpu_count() or 1):.2f} available; "
            f"{r['cpu']['steal']:.2f} taken by the host for other machines)"
        )
        if args.waiting_room:
            print(
                f"    waiting room: median time in line {r['line_p50']:.1f} s, longest {r['line_max']:.1f} s, "
                f"{r['line_requests']} waiting-room requests"
            )
        for detail, n in r["error_kinds"].most_common(5):
            print(f"    error x{n}: {detail}")
    print()
    for name, value in checks[-1].items():
        print(f"check (last round) {name}: {value}")
    for name, (n, wall, cpu, size) in queries.items():
        print(f"one {name}: {n:.0f} queries, {wall:.1f} ms wall / {cpu:.1f} ms CPU in-process, {size / 1024:.0f} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200, help="customers, each signed in (default 200)")
    parser.add_argument("--attempts", type=int, default=10, help="hold requests per customer at most")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, each on a freshly reset performance")
    parser.add_argument(
        "--server", choices=["granian", "gunicorn"], default="granian", help="granian (production's) or gunicorn"
    )
    parser.add_argument("--workers", type=int, help="processes (default: granian one per core, gunicorn 2 x cores + 1)")
    parser.add_argument(
        "--threads", type=int, help="threads per process (default: granian 4, gunicorn 1; > 1 is gthread)"
    )
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=0,
        help="customers arriving per second, evenly spaced (default 0: all at the same instant)",
    )
    parser.add_argument(
        "--form",
        action="store_true",
        help="post like a browser without JavaScript (a 409 redraws the whole page) instead of the map's script",
    )
    parser.add_argument(
        "--waiting-room",
        type=int,
        default=0,
        metavar="PER_MINUTE",
        help="sales open with a waiting room letting in this many customers a minute (default 0: none)",
    )
    parser.add_argument("--think-ms", type=int, default=0, help="pause before retrying after a 409 (default none)")
    parser.add_argument(
        "--preconnect",
        action="store_true",
        help="each customer's first hold goes over a connection opened before sales open (as a browser's would)",
    )
    parser.add_argument(
        "--disjoint",
        action="store_true",
        help="no two customers want the same seat: no conflicts, the ceiling for this server",
    )
    parser.add_argument("--limit", type=int, default=4, help="the event's ticket limit per customer")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306")
    add_mysql_socket_option(parser)
    parser.add_argument("--database", default="ticketing_flash")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep", action="store_true", help="keep the database (and the server's log) afterwards")
    args = parser.parse_args()
    server_shape(args)
    args.warmup_users = 11  # one to warm the server up, ten for the in-process query count
    args.json = not args.form

    env = server_env(args)
    os.environ.update(env)
    create_database(args)
    tmp = Path(tempfile.mkdtemp(prefix="ticketing-flash-"))
    log_path = tmp / "server.log"
    process = None
    oversold, errors = False, 0
    try:
        started = time.perf_counter()
        world = prepare(args)
        print(f"setup:         {time.perf_counter() - started:.1f} s (migrate, seed, collectstatic, sessions)")
        port = free_port()
        process = start_server(args, env, port, log_path)
        run_client(wait_ready(port, process))
        run_client(warm_up(world, port, rounds=4 * args.workers * args.threads))
        rounds, checks = [], []
        args.calibration = [calibration_ms()]
        for i in range(args.rounds):
            if args.waiting_room:
                open_sale_with_waiting_room(world, args.waiting_room)
            snapshot = functools.partial(cpu_snapshot, process, database_pids())
            customers, wall, before, after = run_client(burst(world, port, args, args.seed + i, snapshot))
            rounds.append(summarise(customers, wall))
            cpu = {name: after[name] - before[name] for name in before}
            # Everything else: the kernel's share of loopback traffic, and any other load
            # on the machine (which makes a run unrepresentative: see "other").
            steal = cpu.pop("steal")
            cpu["other"] = max(0.0, cpu.pop("machine") - sum(cpu.values()))
            cpu["steal"] = steal
            rounds[-1]["cpu"] = cpu
            checks.append(check_database(world, customers))
            if i < args.rounds - 1:
                reset(world)
                time.sleep(1)
        args.calibration.append(calibration_ms())
        stop_server(process)
        if args.waiting_room:  # the in-process customers below hold without queueing
            from events.models import Performance

            Performance.objects.filter(pk=world.performance_id).update(waiting_room_rate=None)
        queries = count_queries(world)
        print_results(args, world, rounds, checks, queries)
        oversold = any(any(c.values()) for c in checks)
        errors = sum(r["errors"] for r in rounds)
    except BaseException:
        if log_path.exists():
            print("--- end of the server's log:", *log_path.read_text(errors="replace").splitlines()[-15:], sep="\n")
        raise
    finally:
        if process is not None:
            stop_server(process)
        if "django.db" in sys.modules:
            try:
                sys.modules["django.db"].connections.close_all()
            except Exception as exc:  # settings that failed to load: nothing to close
                print(f"(closing connections: {exc})")
        if args.keep:
            print(f"kept database {args.database}; server log: {log_path}")
        else:
            drop_database(args)
            log_path.unlink(missing_ok=True)
            tmp.rmdir()
    if oversold:
        print("FAILED: seats were oversold or the bookkeeping does not add up (see the checks above)")
        sys.exit(1)
    if errors:
        print(f"FAILED: {errors} answers other than a hold or a clean 'seat taken' (see above)")
        sys.exit(2)


if __name__ == "__main__":
    main()
