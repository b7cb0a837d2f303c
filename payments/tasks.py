"""Celery tasks: thin wrappers that call one service each (queue "default").

Both are idempotent (the sync applies what I'mport says once, reconciliation only
syncs), so they are acknowledged late (settings.CELERY_TASK_ACKS_LATE) and a run
lost with its worker is run again.
"""

import logging

from celery import shared_task

from . import services
from .gateway import GatewayUnavailable, PaymentNotFound

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=60,
    time_limit=90,
)
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
