"""The Celery application, and the one way the project sends tasks.

Configuration is in settings.py (the CELERY_* names): JSON only, late
acknowledgement, time limits, and two queues, "default" (hold expiry, payments) and
"email" (notifications). Tasks live in each app's tasks.py; they take ids, call one
service, and are sent with `enqueue` below once the transaction that made them
necessary has committed. The schedule is django-celery-beat's, in the database.
"""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

logger = logging.getLogger(__name__)

app = Celery("ticketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue(task, *args, **kwargs) -> None:
    """Send `task` after the current transaction commits (at once outside one).

    Never raises: the caller's work is committed by then and the customer must not
    see an error because Redis is down. Nothing is lost either: every task here has
    a periodic job that finds the same work in the database (the hold sweeper, payment
    reconciliation, the notification retry), so a send that failed is logged and
    left to it.
    """
    from django.db import transaction

    transaction.on_commit(lambda: send_now(task, *args, **kwargs))


def send_now(task, *args, **kwargs) -> bool:
    """Send `task` now; log and return False if the broker cannot take it."""
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:
        # Usually kombu.exceptions.OperationalError (broker unreachable); in eager mode
        # it is the task's own error, which must not undo the caller's committed work.
        logger.exception("could not queue %s%r; the periodic jobs will catch up", task.name, args)
        return False
    return True
