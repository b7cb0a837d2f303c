"""Sessions read from the cache (Redis), with the database behind them."""

import logging

from django.contrib.sessions.backends import cached_db

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    """Django's cached_db sessions, still served from the database while Redis is down.

    Django already treats a failed cache read as a miss and logs a failed cache write on
    save; the one step left that turns a Redis outage into an error on every signed-in
    page is refilling the cache after a miss, so that is tolerated here too. Deleting
    still fails loudly: a session left behind in the cache would outlive its sign-out.
    """

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            data = None  # as Django does: a miss
        if data is not None:
            return data
        stored = self._get_session_from_db()
        if not stored:
            return {}
        data = self.decode(stored.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=stored.expire_date))
        except Exception:
            logger.warning("session cache unavailable; served from the database", exc_info=True)
        return data
