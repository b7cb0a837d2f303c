"""Celery's configuration and the beat schedule that migrate installs."""

import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from ticketing.celery import app

DEFAULTS = {
    "release-expired-holds": ("reservations.tasks.release_expired_holds", "every 1 minutes"),
    "payment-reminders": ("notifications.tasks.send_payment_reminders", "every 5 minutes"),
    "reconcile-payments": ("payments.tasks.reconcile_payments", "every 5 minutes"),
    "performance-reminders": ("notifications.tasks.send_performance_reminders", "0 10 * * * Asia/Seoul"),
    "retry-notifications": ("notifications.tasks.send_pending_notifications", "every 5 minutes"),
}


def describe(task: PeriodicTask) -> str:
    if task.interval_id:
        return f"every {task.interval.every} {task.interval.period}"
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} {c.timezone}"


@pytest.mark.django_db(transaction=True)
def test_migrate_installs_the_default_schedule_of_real_tasks():
    # Transactional tests empty every table when they end, rows written by migrations
    # included, so run the data migration backwards and forwards to see what it does.
    call_command("migrate", "notifications", "0001", verbosity=0)
    assert not PeriodicTask.objects.filter(name__in=DEFAULTS).exists()
    call_command("migrate", verbosity=0)
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    installed = {t.name: t for t in PeriodicTask.objects.select_related("interval", "crontab")}
    assert set(DEFAULTS) <= set(installed)
    for name, (task, schedule) in DEFAULTS.items():
        entry = installed[name]
        assert (entry.task, describe(entry), entry.enabled) == (task, schedule, True), name
        assert entry.task in app.tasks, f"{name} names {entry.task}, which no app registers"
        assert entry.expire_seconds > 0, name
    # Beat's own scheduler turns them into schedules, the crontab in Korea time.
    entries = {name: DatabaseScheduler.Entry(installed[name], app=app) for name in DEFAULTS}
    assert entries["release-expired-holds"].schedule.run_every == dt.timedelta(minutes=1)
    assert entries["payment-reminders"].schedule.run_every == dt.timedelta(minutes=5)
    crontab = entries["performance-reminders"].schedule
    assert (crontab.hour, crontab.minute, str(crontab.tz)) == ({10}, {0}, "Asia/Seoul")
    # A run no worker took in time is dropped, not piled up behind a stopped worker.
    assert entries["release-expired-holds"].options["expires"] == 55


@pytest.mark.django_db
def test_installing_again_adds_only_what_is_missing_and_keeps_staff_changes():
    migration = importlib.import_module("notifications.migrations.0002_default_beat_schedule")
    migration.install_defaults(apps)  # make sure the defaults are there in this test's view
    staff_edit = PeriodicTask.objects.get(name="payment-reminders")
    staff_edit.enabled = False
    staff_edit.save()
    PeriodicTask.objects.filter(name="reconcile-payments").delete()
    migration.install_defaults(apps)
    migration.install_defaults(apps)
    assert PeriodicTask.objects.filter(name__in=DEFAULTS).count() == len(DEFAULTS)
    assert PeriodicTask.objects.get(name="payment-reminders").enabled is False
    assert PeriodicTask.objects.get(name="reconcile-payments").enabled is True


def test_settings_have_no_static_beat_schedule(settings):
    assert not hasattr(settings, "CELERY_BEAT_SCHEDULE")
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    assert "django_celery_beat" in settings.INSTALLED_APPS


def test_celery_speaks_json_acks_late_and_has_limits():
    conf = app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.task_acks_late is True and conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    # Longer than the longest retry countdown, or Redis would hand a waiting retry out twice.
    assert conf.broker_transport_options["visibility_timeout"] > 30 * 60


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("reservations.tasks.release_expired_holds", "default"),
        ("payments.tasks.sync_payment", "default"),
        ("payments.tasks.reconcile_payments", "default"),
        ("payments.tasks.refund_cancelled_booking", "default"),
        ("notifications.tasks.send_notification", "email"),
        ("notifications.tasks.send_payment_reminders", "email"),
        ("notifications.tasks.send_performance_reminders", "email"),
        ("notifications.tasks.send_pending_notifications", "email"),
    ],
)
def test_email_has_a_queue_of_its_own(task, queue):
    app.loader.import_default_modules()
    assert task in app.tasks
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_task_is_bounded_in_time():
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if name.split(".")[0] in ("notifications", "reservations", "payments")]
    assert len(ours) == 8
    for task in ours:
        assert task.time_limit and task.soft_time_limit < task.time_limit, task.name
        assert task.ignore_result, task.name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("24h,3h", (dt.timedelta(hours=24), dt.timedelta(hours=3))),
        (" 3h , 2d,90m ", (dt.timedelta(days=2), dt.timedelta(hours=3), dt.timedelta(minutes=90))),
        ("", ()),
    ],
)
def test_reminder_offsets_setting(monkeypatch, raw, expected):
    from ticketing import settings as project_settings

    monkeypatch.setenv("TICKETING_PAYMENT_REMINDER_OFFSETS", raw)
    assert project_settings._durations("TICKETING_PAYMENT_REMINDER_OFFSETS", "24h,3h") == expected


@pytest.mark.parametrize("raw", ["24", "3x", "h", "0h", "-3h", "1.5h"])
def test_a_mistyped_reminder_offset_stops_the_process(monkeypatch, raw):
    import environ

    from ticketing import settings as project_settings

    monkeypatch.setenv("TICKETING_PAYMENT_REMINDER_OFFSETS", raw)
    with pytest.raises(environ.ImproperlyConfigured, match="is not a duration"):
        project_settings._durations("TICKETING_PAYMENT_REMINDER_OFFSETS", "24h,3h")
