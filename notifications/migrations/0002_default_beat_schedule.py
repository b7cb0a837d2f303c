"""The default Celery beat schedule, in django-celery-beat's tables.

This is the one place the defaults are written down (settings has no
CELERY_BEAT_SCHEDULE): beat runs with the DatabaseScheduler and staff change the
schedule in the admin (Periodic tasks). Idempotent: an entry that exists, by name, is
left as staff made it; running this again only adds what is missing.
"""

from django.db import migrations
from django.utils import timezone

SEOUL = "Asia/Seoul"

# name -> (task, schedule, expire_seconds, description). A schedule is ("every", n,
# period) or ("crontab", minute, hour) in Korea time. `expire_seconds` drops a run no worker picked
# up in time, so a stopped worker does not come back to a pile of identical sweeps.
DEFAULT_SCHEDULE = {
    "release-expired-holds": (
        "reservations.tasks.release_expired_holds",
        ("every", 1, "minutes"),
        55,
        "Record expired holds and put their seats back on sale (availability never waits for this).",
    ),
    "payment-reminders": (
        "notifications.tasks.send_payment_reminders",
        ("every", 5, "minutes"),
        290,
        "Email customers whose payment deadline is near (TICKETING_PAYMENT_REMINDER_OFFSETS).",
    ),
    "reconcile-payments": (
        "payments.tasks.reconcile_payments",
        ("every", 5, "minutes"),
        290,
        "Catch up on payments whose webhook never came, and refunds still owed.",
    ),
    "performance-reminders": (
        "notifications.tasks.send_performance_reminders",
        ("crontab", "0", "10"),
        6 * 3600,
        "Daily at 10:00 Korea time: email everyone with a booking for a performance tomorrow.",
    ),
    "retry-notifications": (
        "notifications.tasks.send_pending_notifications",
        ("every", 5, "minutes"),
        290,
        "Send emails whose first attempt was lost (broker down, worker died) or is due for a retry.",
    ),
}


def install_defaults(apps, schema_editor=None):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    added = False
    for name, (task, schedule, expire_seconds, description) in DEFAULT_SCHEDULE.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue  # staff may have changed it: theirs stands
        fields = {"name": name, "task": task, "expire_seconds": expire_seconds, "description": description}
        if schedule[0] == "every":
            spec = {"every": schedule[1], "period": schedule[2]}
            fields["interval"] = (
                IntervalSchedule.objects.filter(**spec).order_by("pk").first() or IntervalSchedule.objects.create(**spec)
            )
        else:
            spec = {
                "minute": schedule[1],
                "hour": schedule[2],
                "day_of_week": "*",
                "day_of_month": "*",
                "month_of_year": "*",
                "timezone": SEOUL,
            }
            fields["crontab"] = (
                CrontabSchedule.objects.filter(**spec).order_by("pk").first() or CrontabSchedule.objects.create(**spec)
            )
        PeriodicTask.objects.create(**fields)
        added = True
    if added:
        # Historical models skip django-celery-beat's save() hooks; this is the change
        # marker a running beat polls to reload its schedule.
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_defaults(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=DEFAULT_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install_defaults, remove_defaults)]
