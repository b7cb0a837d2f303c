from django.db import OperationalError

# MariaDB/MySQL: 1213 deadlock found (the transaction was rolled back), 1205 lock wait
# timeout. Both mean "lost a race for a lock", not "something is broken".
LOCK_CONFLICT_CODES = (1213, 1205)


def is_lock_conflict(exc: OperationalError) -> bool:
    return bool(exc.args) and exc.args[0] in LOCK_CONFLICT_CODES
