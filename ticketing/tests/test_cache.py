"""The Redis cache backend: Django's, sharing one client per connection pool."""

import os
import uuid
from urllib.parse import urlsplit

from ticketing.cache import RedisCache


def redis_cache() -> RedisCache:
    # Database 15 of the test Redis (REDIS_URL's host, or the local one in the SQLite
    # run, which .ci/run starts too); keys are unique per run and deleted.
    base = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return RedisCache(base._replace(path="/15").geturl(), {"OPTIONS": {"socket_timeout": 1}})


def test_values_round_trip_through_redis():
    cache = redis_cache()
    key = f"test-cache-{uuid.uuid4().hex}"
    try:
        cache.set(key, {"seats": [1, 2]}, 30)
        assert cache.get(key) == {"seats": [1, 2]}
        assert cache.add(key, "other", 30) is False
        assert cache.add(f"{key}-n", 0, 30) is True
        assert cache.incr(f"{key}-n") == 1
    finally:
        cache.delete_many([key, f"{key}-n"])
    assert cache.get(key) is None


def test_one_client_per_pool_not_one_per_call():
    cache = redis_cache()
    first = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client() is first  # one server: reads use the same pool
