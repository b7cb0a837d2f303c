"""Django's Redis cache, with one redis-py client per connection pool.

Django's RedisCacheClient builds a new redis.Redis for every cache call, and each
build fills a table of ~80 response callbacks: ~0.2 ms of CPU per call, paid by every
signed-in request since sessions are read from Redis (docs/benchmarks.md). A redis.Redis
holds no connection of its own (it borrows from the pool per command), so one per pool
is safe to share between threads.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _SharedClients(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClients
