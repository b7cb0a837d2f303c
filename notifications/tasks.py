"""Celery tasks: thin wrappers that call one service each. All run on the "email"
queue (settings.CELERY_TASK_ROUTES), so mail never delays hold expiry or payments.

Every one is idempotent: the periodic ones only claim rows that nobody has claimed,
and a send claims its row before sending, so a redelivered or retried task (late
acknowledgement, a worker lost mid-task) does no harm.
"""

from celery import shared_task

from . import services


@shared_task(bind=True, ignore_result=True, max_retries=services.MAX_ATTEMPTS, soft_time_limit=60, time_limit=90)
def send_notification(self, notification_id: int) -> None:
    """Send one message (sent on commit by the service that decided on it).

    A temporary failure (mail server down) is retried with the service's backoff,
    a bounded number of times; the service logs the message as failed after the last.
    A row that no longer exists, or was already sent, ends the task quietly.
    """
    result = services.notification_send(notification_id=notification_id)
    # In eager mode (no broker) a retry would run at once, inside the request: leave
    # the row queued for notifications_send_pending instead.
    if result.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=int(result.retry_in.total_seconds()))


@shared_task(ignore_result=True, soft_time_limit=100, time_limit=120)
def send_payment_reminders() -> int:
    """Every few minutes (beat): remind customers whose payment deadline is near."""
    return services.payment_reminders_queue()


@shared_task(ignore_result=True, soft_time_limit=100, time_limit=120)
def send_performance_reminders() -> int:
    """Daily at 10:00 Korea time (beat): bookings for a performance tomorrow."""
    return services.performance_reminders_queue()


@shared_task(ignore_result=True, soft_time_limit=240, time_limit=300)
def send_pending_notifications() -> int:
    """Every few minutes (beat): messages whose send was lost or is due for a retry."""
    return services.notifications_send_pending()
