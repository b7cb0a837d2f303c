"""Celery tasks: thin wrappers that call one service each (queue "default").

Idempotent, so acknowledged late (settings.CELERY_TASK_ACKS_LATE): a sweep whose
worker died is simply run again.
"""

from celery import shared_task

from . import services


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=50, time_limit=60)
def release_expired_holds() -> int:
    """Every minute (beat): record expired holds and free their places.

    Not retried: the next run a minute later finds whatever this one missed.
    """
    return services.holds_expire()
