"""Benchmark: how fast can this stack answer a signed-in POST that does nothing?

Usage (from the repository root; MariaDB on 127.0.0.1:3306 and Redis on 6379):
    .venv/bin/python bench/request_floor.py [--requests 265] [--rounds 4] [--server granian|gunicorn]

The flash sale (bench/flash_sale.py) sends ~265 hold requests for its 200 holds. This
sends the same number of POSTs at the same instant, with the same client, sessions and
server settings, to a view that reads the session and the signed-in user, passes the
CSRF check and answers a few bytes of JSON (bench/floor_site.py). What it measures is the
ceiling no hold can beat on this machine: web server, Django's request handling, session
and user, the load generator and the kernel's loopback traffic, and no reservation engine.
Results are recorded in docs/benchmarks.md ("The request floor").
"""

import argparse
import asyncio
import functools
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flash_sale


async def post_at_once(port: int, sessions: list[str], count: int, snapshot) -> tuple[float, list[int], dict, dict]:
    """`count` POSTs at the same instant: the wall time, the statuses, and `snapshot()`
    (CPU counters) taken as the gate opens and after the last answer."""
    go = asyncio.Event()

    async def one(key: str) -> int:
        csrf = secrets.token_hex(16)
        body = urlencode({"token": uuid.uuid4().hex, "csrfmiddlewaretoken": csrf}).encode()
        await go.wait()
        answer = await flash_sale.request(
            port,
            "POST",
            "/bench/nothing/",
            cookies=f"sessionid={key}; csrftoken={csrf}",
            body=body,
            accept="application/json",
        )
        return answer.status

    tasks = [asyncio.create_task(one(sessions[i % len(sessions)])) for i in range(count)]
    await asyncio.sleep(0.2)
    before = snapshot()
    start = time.perf_counter()
    go.set()
    statuses = await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    return wall, statuses, before, snapshot()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=265, help="POSTs sent at the same instant (default 265)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--mysql-url", default="mysql://root@127.0.0.1:3306")
    flash_sale.add_mysql_socket_option(parser)
    parser.add_argument("--database", default="ticketing_floor")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    flash_sale.server_shape(args)
    args.customers, args.warmup_users, args.limit = 200, 1, 4

    env = flash_sale.server_env(args)
    env["DJANGO_SETTINGS_MODULE"] = "bench.floor_settings"
    os.environ.update(env)
    flash_sale.create_database(args)
    log_path = Path(tempfile.mkstemp(prefix="ticketing-floor-", suffix=".log")[1])
    process = None
    failed = False
    try:
        world = flash_sale.prepare(args)
        port = flash_sale.free_port()
        process = flash_sale.start_server(args, env, port, log_path)
        flash_sale.run_client(flash_sale.wait_ready(port, process))
        sessions = [key for _, key in world.sessions[: args.customers]]
        flash_sale.run_client(post_at_once(port, sessions, 20 * args.workers * args.threads, dict))  # warm up
        print(f"server: {args.server}, {args.workers} workers x {args.threads} threads; {os.cpu_count()} cores")
        print(f"machine speed: fixed loop {flash_sale.calibration_ms():.0f} ms (lower is faster)")
        print("round  wall s  requests/s  statuses      CPU s: server  mariadb  client  other  steal")
        for i in range(args.rounds):
            snapshot = functools.partial(flash_sale.cpu_snapshot, process, flash_sale.database_pids())
            wall, statuses, before, after = flash_sale.run_client(post_at_once(port, sessions, args.requests, snapshot))
            cpu = {name: after[name] - before[name] for name in before}
            steal = cpu.pop("steal")
            other = max(0.0, cpu.pop("machine") - sum(cpu.values()))
            counts = {s: statuses.count(s) for s in sorted(set(statuses))}
            failed |= set(counts) != {200}
            print(
                f"{i + 1:5d}  {wall:6.2f}  {args.requests / wall:10.0f}  {counts!s:12s}"
                f"  {cpu['server']:13.2f}  {cpu['mariadb']:7.2f}  {cpu['client']:6.2f}  {other:5.2f}  {steal:5.2f}"
            )
            time.sleep(0.5)
    finally:
        if process is not None:
            flash_sale.stop_server(process)
        if "django.db" in sys.modules:
            sys.modules["django.db"].connections.close_all()
        flash_sale.drop_database(args)
        log_path.unlink(missing_ok=True)
    if failed:
        sys.exit("FAILED: answers other than 200 (see the statuses above)")


if __name__ == "__main__":
    main()
