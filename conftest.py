"""Fixtures shared by every app's tests."""

import os

import pytest

pytest_plugins = ["payments.testing"]  # fake_iamport_server, fake_iamport

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _eager_celery_unless_a_worker_is_wanted(request):
    """Tasks run in-process in tests, as in the embedded default, even when REDIS_URL
    is set (CI's MariaDB + Redis run); tests of the real worker opt out."""
    from ticketing.celery import app

    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    # The app reads Django settings under the CELERY_ namespace, so keys carry it.
    previous = app.conf.task_always_eager
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=previous)


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    # Assertions read English text unless a test switches language on purpose.
    settings.LANGUAGE_CODE = "en"
    # Real password hashing costs ~0.3 s per user; tests only need it to round-trip.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counts and seats are asserted right after changing them; tests of the reuse
    # itself turn it back on.
    settings.TICKETING_EVENT_FREE_COUNTS_SECONDS = 0
    settings.TICKETING_SEAT_MAP_PLACES_SECONDS = 0
    settings.TICKETING_PERFORMANCE_SECONDS = 0


@pytest.fixture
def hall(db):
    """A small seated layout with two grades and a standing zone."""
    from events.tests.factories import LayoutFactory

    return LayoutFactory(
        spec="""
section "A구역" floor=1층 x=0 y=0
rows A-B seats 1-5 grade=R
row C seats 1-5 grade=S
standing "스탠딩" floor=1층 x=0 y=-120 w=200 h=80 capacity=4 grade=ST
"""
    )


@pytest.fixture
def performance(hall):
    """An on-sale performance of a published event at `hall`."""
    from events.tests.factories import EventFactory, PerformanceFactory

    event = EventFactory(venue=hall.venue, grades=[("R", 120000), ("S", 90000), ("ST", 80000)])
    return PerformanceFactory(event=event, layout=hall)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; never a downloaded browser."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make system-deps)")
    # Playwright's sync API runs an event loop in this thread; Django would then
    # refuse ORM calls from test code, which here is safe (the loop is idle).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def alice(db):
    """A customer."""
    from events.tests.factories import UserFactory

    return UserFactory(email="alice@example.com")


@pytest.fixture
def bob(db):
    """Another customer, for "someone else's" cases."""
    from events.tests.factories import UserFactory

    return UserFactory(email="bob@example.com")
