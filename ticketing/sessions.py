"""Sessions read from the cache (Redis), with the database behind them."""

import logging

from django.contrib.sessions.backends import cached_db, db

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    """Django's cached_db sessions, still served from the database while Redis is down.

    Django treats a failed cache read in load() as a miss and logs a failed write in
    save(), but the refill after a miss and the key check when a session is created
    still reach the cache unguarded, so an outage would fail every signed-in page and
    every sign-in. Those fall back to the database here. Deleting still fails loudly:
    a session left behind in the cache would outlive its sign-out.
    """

    def load(self):
        try:
            return super().load()
        except Exception:
            logger.warning("session cache unavailable; read from the database", exc_info=True)
            return db.SessionStore.load(self)

    def exists(self, session_key):
        try:
            return super().exists(session_key)
        except Exception:
            logger.warning("session cache unavailable; checked in the database", exc_info=True)
            return db.SessionStore.exists(self, session_key)
