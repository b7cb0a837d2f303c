import datetime as dt
from importlib import import_module

import factory
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from events.models import Event, Performance, PriceGrade, SeatLayout, Venue
from events.services import performance_create, seat_layout_generate

PALETTE = ["#7b2ff7", "#d93a31", "#2563eb", "#16803c", "#c2410c"]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name", locale="ko_KR")
    password = factory.PostGenerationMethodCall("set_password", "pass-1234-word")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue

    name = factory.Sequence(lambda n: f"Venue {n}")
    slug = factory.Sequence(lambda n: f"venue-{n}")
    address = "서울특별시 종로구 대학로 1"


class LayoutFactory(factory.django.DjangoModelFactory):
    """A layout whose seats are generated from `spec` by the real builder."""

    class Meta:
        model = SeatLayout

    venue = factory.SubFactory(VenueFactory)
    name = factory.Sequence(lambda n: f"Hall {n}")
    spec = 'section "A" x=0 y=0\nrows A-C seats 1-10 grade=R\n'

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        spec = kwargs.pop("spec")
        layout = super()._create(model_class, *args, **kwargs)
        seat_layout_generate(layout=layout, spec=spec)
        layout.refresh_from_db()
        return layout


class EventFactory(factory.django.DjangoModelFactory):
    """A published event; `grades=[("R", 120000), ...]` creates its price grades."""

    class Meta:
        model = Event
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Event {n}")
    slug = factory.Sequence(lambda n: f"event-{n}")
    category = Event.Category.CONCERT
    venue = factory.SubFactory(VenueFactory)
    running_time = 120
    status = Event.Status.PUBLISHED

    @factory.post_generation
    def grades(obj, create, extracted, **kwargs):
        for position, (code, price) in enumerate(extracted or [("R", 100000)]):
            PriceGrade.objects.create(
                event=obj, code=code, price=price, colour=PALETTE[position % len(PALETTE)], position=position
            )


class PerformanceFactory(factory.django.DjangoModelFactory):
    """An on-sale performance created through the service, so its inventory exists."""

    class Meta:
        model = Performance

    event = factory.SubFactory(EventFactory)
    layout = factory.LazyAttribute(lambda o: LayoutFactory(venue=o.event.venue))
    # Performances start on the minute, as staff enter them.
    starts_at = factory.LazyFunction(lambda: (timezone.now() + dt.timedelta(days=10)).replace(second=0, microsecond=0))
    sales_open_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    sales_close_at = factory.LazyAttribute(lambda o: o.starts_at - dt.timedelta(hours=2))
    status = Performance.Status.ON_SALE

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return performance_create(**kwargs)


def session_key_for(user) -> str:
    """A saved session signed in as `user`, as logging in would make: for clients that
    are not Django's test client (Playwright, requests against the live server)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "accounts.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key
