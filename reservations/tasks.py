"""Celery tasks: thin wrappers that call one service each."""

from celery import shared_task

from . import services


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def release_expired_holds() -> int:
    """Every minute: record expired holds and free their places (beat schedule)."""
    return services.holds_expire()
