"""The production settings, routed through bench/floor_site.py (bench/request_floor.py)."""

from ticketing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_site"
