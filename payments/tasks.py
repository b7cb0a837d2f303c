"""Celery tasks: thin wrappers that call one service each (queue "default").

Both are idempotent (the sync applies what I'mport says once, reconciliation only
syncs), so they are acknowledged late (settings.CELERY_TASK_ACKS_LATE) and a run
lost with its worker is run again.
"""

import logging

from celery import shared_task

from . import services
from .gateway import GatewayUnavailable, PaymentNotFound
from .services import RefundNotSent

logger = logging.getLogger(__name__)


# Tasks that call I'mport: retried, backing off, a bounded number of times while it
# does not answer.
WHILE_IMPORT_IS_DOWN = {
    "bind": True,
    "ignore_result": True,
    "acks_late": True,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 6,
    "soft_time_limit": 60,
    "time_limit": 90,
}


@shared_task(autoretry_for=(GatewayUnavailable,), **WHILE_IMPORT_IS_DOWN)
def sync_payment(self, imp_uid: str) -> None:
    """After a webhook: fetch the payment from I'mport and apply it. Retried (a bounded
    number of times, backing off) while I'mport is unreachable; reconciliation catches
    anything that still slips."""
    try:
        services.payment_sync(imp_uid=imp_uid, source="webhook")
    except PaymentNotFound:
        logger.warning("webhook for unknown imp_uid %s ignored", imp_uid)


@shared_task(ignore_result=True, acks_late=True, soft_time_limit=240, time_limit=300)
def reconcile_payments() -> int:
    """Every few minutes (beat): payments whose webhook never came, refunds still owed.
    Not retried: the next run finds whatever this one missed."""
    return services.payments_reconcile()


@shared_task(autoretry_for=(RefundNotSent,), **WHILE_IMPORT_IS_DOWN)
def refund_cancelled_booking(self, reservation_id: int, actor_id: int | None = None) -> None:
    """One booking of a cancelled performance: refund it in full and cancel it. Retried
    while I'mport is unreachable; reconciliation finishes any that still slip."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    services.booking_refund_cancelled_performance(reservation_id=reservation_id, actor=actor)
