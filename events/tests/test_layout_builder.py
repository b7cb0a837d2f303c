import pytest
from django.core.exceptions import ValidationError

from events.layout_builder import ROW_PITCH, SEAT_PITCH, LayoutSpecError, parse_layout_spec
from events.models import Seat, Section
from events.services import seat_layout_generate
from events.tests.factories import LayoutFactory


def test_generates_labelled_seats_with_grades_and_accessibility():
    plan = parse_layout_spec(
        """
        section "A구역" floor=1층 x=0 y=0
        rows A-B seats 1-4 grade=VIP accessible=1
        row C seats 1-4 grade=R
        """
    )
    (section,) = plan.sections
    seats = section.seats
    assert plan.seat_count == 12
    assert [s.label for s in seats[:2]] == ["1층 A구역 A열 1번", "1층 A구역 A열 2번"]
    assert {s.grade_code for s in seats if s.row in "AB"} == {"VIP"}
    assert [s.number for s in seats if s.is_accessible] == [1, 1]
    assert {s.grade_code for s in seats if s.row == "C"} == {"R"}


def test_letter_rows_skip_i_and_o():
    plan = parse_layout_spec('section "A" x=0 y=0\nrows G-P seats 1-2 grade=R')
    assert [row[0].row for row in plan.sections[0].rows] == ["G", "H", "J", "K", "L", "M", "N", "P"]


def test_aisle_leaves_a_gap_and_short_rows_are_centred():
    plan = parse_layout_spec('section "A" x=0 y=0\nrow 1 seats 1-4 grade=R aisle=2\nrow 2 seats 1-2 grade=R')
    first, second = plan.sections[0].rows
    xs = [seat.x for seat in first]
    assert xs[1] - xs[0] == SEAT_PITCH
    assert xs[2] - xs[1] == 2 * SEAT_PITCH  # the aisle
    assert second[0].y - first[0].y == ROW_PITCH
    # The two-seat row sits in the middle of the five-pitch-wide section.
    middle = (xs[0] + xs[-1]) / 2
    assert (second[0].x + second[1].x) / 2 == pytest.approx(middle, abs=SEAT_PITCH / 2)


def test_standing_zone_and_stage():
    plan = parse_layout_spec('stage "무대"\nstanding "스탠딩" w=300 h=100 capacity=500 grade=ST')
    assert plan.stage_label == "무대"
    assert plan.standing_capacity == 500
    assert plan.sections[0].kind == "standing"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("rows A-C seats 1-10 grade=R", "line 1: rows must follow a section line"),
        ('section "A"\nrows A-C seats 1-10', "line 2: grade= is required"),
        ('section "A"\nrows A-C seats 1-10 grade=R colour=red', "line 2: Unknown option “colour=red”"),
        ('section "A"\nrows C-A seats 1-10 grade=R', "line 2: “C-A” is not a row range"),
        ('section "A"\nrows A-C seats 10-1 grade=R', "line 2: seat range “10-1” must count upwards"),
        ('section "A"\nrows A-B seats 1-3 grade=R\nrow B seats 1-3 grade=S', "line 3: Row B appears twice"),
        ('section "A"\nrows A-B seats 1-3 grade=R 석', "line 2: Unknown option “석”"),
        ('section "A"\nrows A seats 1-3 grade=R-1', "line 2: Grade code “R-1”"),
        ('section "A" x=abc', "line 1: x must be a whole number"),
        ('section "A"', "section A has no rows"),
        ('standing "P" capacity=0 grade=ST', "line 1: A standing zone needs capacity= above zero"),
        (
            'section "A"\nrow A seats 1-3 grade=R\nsection "A"\nrow A seats 1-3 grade=R',
            "Section A is defined more than once",
        ),
        (
            'section "A" x=0 y=0\nrows A-C seats 1-10 grade=R\nsection "B" x=100 y=20\nrow A seats 1-3 grade=R',
            "line 3: section B overlaps section A",
        ),
        ("balcony", "line 1: Unknown line “balcony”"),
        # Checked before anything is built: a range of billions must not fill the memory.
        ('section "A"\nrows 1-3 seats 1-99999999999 grade=R', "line 2: seat numbers go up to 9999, not 99999999999"),
        ('section "A"\nrows 1-99999999999 seats 1-3 grade=R', "line 2: row numbers go up to 999"),
        ('section "A"\nrows 1-3 seats 1-500 grade=R', "line 2: That block is too large for one line."),
        ('section "A" x=99999999999999999999', "line 1: x must be between -100000 and 100000"),
        ('standing "P" capacity=99999999 grade=ST', "line 1: capacity must be between 0 and 20000"),
        ('section "A" floor=' + "층" * 21, "line 1: floor= may be at most 20 characters long."),
        ('section "' + "가" * 41 + '"', "line 1: A name may be at most 40 characters long."),
        ('section ""', "line 1: section needs a name"),
        ('section "A"\nrow A seats 1-10 grade=R aisle=30', "line 2: aisle must be between 1 and 10, not 30"),
        ('section "A"\nrow A seats 1-10 grade=R accessible=0', "line 2: accessible must be between 1 and 10"),
        # Many lines, each within its own bounds, still stop at the layout's: before they are built.
        (
            'section "A"\n' + "\n".join(f"rows {60 * k + 1}-{60 * k + 60} seats 1-200 grade=R" for k in range(16)),
            "line 3: A layout may have at most 20000 places, seats and standing places together.",
        ),
        (
            "\n".join(f'standing "P{k}" x={k * 400} capacity=15000 grade=ST' for k in range(3)),
            "line 2: A layout may have at most 20000 places",
        ),
        (
            "\n".join(f'standing "P{k}" x={k * 400} capacity=1 grade=ST' for k in range(201)),
            "line 201: A layout may have at most 200 sections.",
        ),
        ('section "A\nrow A seats 1-2 grade=R', "line 1:"),
    ],
)
def test_mistakes_are_reported_with_their_line(spec, message):
    with pytest.raises(LayoutSpecError) as excinfo:
        parse_layout_spec(spec)
    assert any(message in error for error in excinfo.value.errors), excinfo.value.errors


def test_every_mistake_is_reported_at_once():
    with pytest.raises(LayoutSpecError) as excinfo:
        parse_layout_spec('section "A"\nrows A-B seats 1-3\nrow C seats 1-3 grade=R wrong=1')
    assert len(excinfo.value.errors) == 2


def test_drawing_starts_below_the_stage_whatever_the_coordinates():
    plan = parse_layout_spec('section "A" x=-500 y=-300\nrow A seats 1-3 grade=R')
    section = plan.sections[0]
    assert section.x >= 0 and section.y >= 60
    assert plan.width >= section.x + section.width
    assert plan.height >= section.y + section.height


@pytest.mark.django_db
def test_generate_saves_sections_and_seats_and_replaces_them_on_regeneration():
    layout = LayoutFactory(spec='section "A" x=0 y=0\nrows A-C seats 1-10 grade=R')
    assert Seat.objects.filter(layout=layout).count() == 30

    seat_layout_generate(
        layout=layout,
        spec='section "A" x=0 y=0\nrows A-B seats 1-5 grade=R\nstanding "P" x=0 y=-200 w=200 h=80 capacity=50 grade=ST',
    )
    layout.refresh_from_db()
    assert Seat.objects.filter(layout=layout).count() == 10
    assert list(Section.objects.filter(layout=layout).values_list("name", "kind", "capacity")) == [
        ("A", "seated", 0),
        ("P", "standing", 50),
    ]
    assert layout.width > 0 and layout.height > 0
    assert "capacity=50" in layout.spec


@pytest.mark.django_db
def test_generate_refuses_a_layout_that_performances_sell(performance):
    before = Seat.objects.filter(layout=performance.layout).count()
    with pytest.raises(ValidationError, match="Performances already use this layout"):
        seat_layout_generate(layout=performance.layout, spec='section "A"\nrow A seats 1-3 grade=R')
    assert Seat.objects.filter(layout=performance.layout).count() == before


@pytest.mark.django_db
def test_a_faulty_description_leaves_the_old_seats_alone():
    layout = LayoutFactory()
    with pytest.raises(LayoutSpecError):
        seat_layout_generate(layout=layout, spec='section "A"\nrows A-B seats 1-3')
    assert Seat.objects.filter(layout=layout).count() == 30


def test_demo_hall_is_a_realistic_two_thousand_seat_hall():
    from events.management.commands.seed_demo import GRAND_HALL_CONCERT

    plan = parse_layout_spec(GRAND_HALL_CONCERT)
    assert plan.seat_count >= 2000
    assert plan.standing_capacity == 300
    assert len([s for s in plan.sections if s.kind == "seated"]) == 9
    assert {seat.grade_code for s in plan.sections for seat in s.seats} == {"VIP", "R", "S", "A"}


def test_the_rows_of_a_refused_section_are_not_taken_for_the_section_before():
    spec = 'section "A"\nrow A seats 1-3 grade=R\nsection "' + "가" * 41 + '"\nrow A seats 1-3 grade=R'
    with pytest.raises(LayoutSpecError) as excinfo:
        parse_layout_spec(spec)
    assert excinfo.value.errors == ["line 3: A name may be at most 40 characters long."]
