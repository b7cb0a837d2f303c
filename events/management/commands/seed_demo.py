"""Load demo data: venues, a 2,000-seat hall, events on sale, a staff and a customer login.

Idempotent: running it again finds what exists and only adds what is missing.
"""

import datetime as dt
from urllib.parse import quote

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.services import user_accept_terms
from events.models import Discount, Event, PriceGrade, SeatLayout, Venue
from events.services import performance_create, seat_layout_generate

GRAND_HALL = """\
stage "STAGE"
# 1층: VIP in the centre front, R around it, S behind
section "A구역" floor=1층 x=0 y=0
rows 1-10 seats 1-12 grade=R
rows 11-20 seats 1-12 grade=S
section "B구역" floor=1층 x=280 y=0
rows 1-10 seats 1-24 grade=VIP aisle=12
rows 11-19 seats 1-24 grade=R aisle=12
row 20 seats 1-24 grade=R aisle=12 accessible=1,2,23,24
section "C구역" floor=1층 x=820 y=0
rows 1-10 seats 1-12 grade=R
rows 11-20 seats 1-12 grade=S

# 2층
section "D구역" floor=2층 x=0 y=500
rows 1-14 seats 1-12 grade=A
section "E구역" floor=2층 x=280 y=500
rows 1-14 seats 1-24 grade=S aisle=12
section "F구역" floor=2층 x=820 y=500
rows 1-14 seats 1-12 grade=A

# 3층
section "G구역" floor=3층 x=0 y=850
rows 1-10 seats 1-12 grade=A
section "H구역" floor=3층 x=280 y=850
rows 1-10 seats 1-24 grade=A aisle=12
section "I구역" floor=3층 x=820 y=850
rows 1-10 seats 1-12 grade=A
"""

# Concerts take out the orchestra pit and sell a standing floor in front of the stage.
GRAND_HALL_CONCERT = (
    GRAND_HALL
    + """
standing "스탠딩 P구역" floor=1층 x=140 y=-170 w=700 h=130 capacity=300 grade=ST
"""
)

SMALL_THEATRE = """\
stage "무대"
section "객석" floor=1층 x=0 y=0
rows A-F seats 1-18 grade=R aisle=9
rows G-L seats 1-18 grade=S aisle=9 accessible=1,18
"""

GRAND_GRADES = [
    ("VIP", "VIP석", 165000, "#7b2ff7"),
    ("R", "R석", 143000, "#d93a31"),
    ("S", "S석", 121000, "#2563eb"),
    ("A", "A석", 99000, "#16803c"),
    ("ST", "스탠딩", 132000, "#c2410c"),
]
SMALL_GRADES = [("R", "R석", 55000, "#d93a31"), ("S", "S석", 44000, "#2563eb")]

# The discounts Korean halls commonly sell (name, % off, tickets per booking, who may use them).
DISCOUNTS = [
    ("청소년 할인", 20, None, "만 13~18세 본인 · 입장 시 학생증 또는 신분증 확인"),
    ("장애인 할인", 50, 2, "1~3급 본인과 동반 1인 · 입장 시 복지카드 확인"),
]

# (slug, title, category, venue key, summary, running time, age rating, grades,
#  days from today of the first performance, number of performances, sales open?)
EVENTS = [
    (
        "starlight-2026",
        "새벽별 콘서트 2026 〈STARLIGHT〉",
        "concert",
        "concert",
        "한겨울 밤을 밝히는 새벽별의 단독 콘서트. 스탠딩과 지정석 모두 예매 가능합니다.",
        150,
        "7",
        GRAND_GRADES,
        10,
        3,
        True,
    ),
    (
        "letters-through-time",
        "뮤지컬 〈시간을 달리는 편지〉",
        "musical",
        "grand",
        "1950년 부산과 2026년 서울을 잇는 편지 한 통의 이야기.",
        160,
        "12",
        GRAND_GRADES[:4],
        14,
        6,
        True,
    ),
    (
        "new-year-philharmonic",
        "서울 필하모닉 신년음악회",
        "classical",
        "grand",
        "베토벤 교향곡 9번 〈합창〉과 함께 여는 새해.",
        120,
        "7",
        GRAND_GRADES[:4],
        36,
        2,
        True,
    ),
    (
        "esports-final",
        "2026 K-e스포츠 리그 결승전",
        "sports",
        "concert",
        "올해 최고의 팀을 가리는 결승전을 현장에서.",
        240,
        "all",
        GRAND_GRADES,
        20,
        1,
        True,
    ),
    (
        "small-room",
        "연극 〈작은 방〉",
        "play",
        "small",
        "오래된 하숙집 작은 방에 모인 세 사람의 하룻밤.",
        100,
        "15",
        SMALL_GRADES,
        5,
        8,
        True,
    ),
    (
        "spring-chamber",
        "봄의 실내악 시리즈",
        "classical",
        "small",
        "현악 사중주로 듣는 슈베르트와 드보르자크.",
        90,
        "all",
        SMALL_GRADES,
        60,
        2,
        False,
    ),
]

STAFF_LOGIN = ("staff@ticketing.local", "staff-demo-1234")
CUSTOMER_LOGIN = ("customer@ticketing.local", "customer-demo-1234")


class Command(BaseCommand):
    help = "Load idempotent demo data and print the demo logins."

    @transaction.atomic
    def handle(self, *args, **options):
        arts_center = self._venue("seoul-arts-center", "서울아트센터", "서울특별시 서초구 남부순환로 2406")
        grand_hall = self._layout(venue=arts_center, name="대극장", spec=GRAND_HALL)
        concert_hall = self._layout(venue=arts_center, name="대극장 (콘서트 스탠딩)", spec=GRAND_HALL_CONCERT)
        small_theatre = self._layout(
            venue=self._venue("daehakro-theatre", "대학로 아트홀", "서울특별시 종로구 대학로 12길 21"),
            name="소극장",
            spec=SMALL_THEATRE,
        )
        layouts = {"grand": grand_hall, "concert": concert_hall, "small": small_theatre}
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        for slug, title, category, venue_key, summary, minutes, age, grades, first_day, count, open_now in EVENTS:
            layout = layouts[venue_key]
            event, _created = Event.objects.get_or_create(
                slug=slug,
                defaults={
                    "title": title,
                    "category": category,
                    "venue": layout.venue,
                    "summary": summary,
                    "description": summary + "\n\n공연 시작 후에는 입장이 제한될 수 있습니다.",
                    "running_time": minutes,
                    "age_rating": age,
                    "status": Event.Status.PUBLISHED,
                },
            )
            for position, (code, name, price, colour) in enumerate(grades):
                PriceGrade.objects.get_or_create(
                    event=event,
                    code=code,
                    defaults={"name": name, "price": price, "colour": colour, "position": position},
                )
            for position, (name, percent, per_booking, conditions) in enumerate(DISCOUNTS):
                Discount.objects.get_or_create(
                    event=event,
                    name=name,
                    defaults={
                        "percent_off": percent,
                        "per_booking": per_booking,
                        "conditions": conditions,
                        "position": position,
                    },
                )
            if event.performances.exists():
                continue
            for index in range(count):
                day = today + dt.timedelta(days=first_day + index)
                starts_at = day.replace(hour=14 if day.weekday() >= 5 else 19, minute=0 if day.weekday() >= 5 else 30)
                opens = timezone.now() - dt.timedelta(days=1) if open_now else today + dt.timedelta(days=7, hours=20)
                performance_create(
                    event=event,
                    layout=layout,
                    starts_at=starts_at,
                    sales_open_at=opens,
                    sales_close_at=starts_at - dt.timedelta(hours=2),
                    status="on_sale" if open_now else "scheduled",
                )
        self._user(*STAFF_LOGIN, is_staff=True, is_superuser=True, name="매표소 관리자")
        self._user(*CUSTOMER_LOGIN, name="김예매")
        seats = grand_hall.seats.count()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {Event.objects.count()} events, a {seats}-seat hall."))
        self.stdout.write(f"  Staff login:    {STAFF_LOGIN[0]} / {STAFF_LOGIN[1]}  (admin at /admin/)")
        self.stdout.write(f"  Customer login: {CUSTOMER_LOGIN[0]} / {CUSTOMER_LOGIN[1]}")

    def _venue(self, slug, name, address):
        venue, _ = Venue.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "address": address, "map_url": f"https://map.naver.com/p/search/{quote(address)}"},
        )
        return venue

    def _layout(self, *, venue, name, spec):
        layout, _ = SeatLayout.objects.get_or_create(venue=venue, name=name)
        if not layout.seats.exists() and not layout.sections.exists():
            seat_layout_generate(layout=layout, spec=spec)
            layout.refresh_from_db()
        return layout

    def _user(self, email, password, **fields):
        User = get_user_model()
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, **fields)
        if user.terms_accepted_at is None:
            # As if they had signed up on the site, which asks for these.
            user_accept_terms(user=user, marketing_consent=False)
        # Site sign-in requires a verified address (allauth); demo addresses cannot receive mail.
        EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
