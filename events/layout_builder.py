"""Turn a compact, line-based description of a hall into sections and seats.

Staff describe a hall in a few lines instead of entering thousands of seats::

    # 1층
    section "A구역" floor=1층 x=0 y=0
    rows A-H seats 1-14 grade=R
    rows J-M seats 1-14 grade=S aisle=7 accessible=1,2
    section "B구역" floor=1층 x=320 y=0
    rows 1-10 seats 1-20 grade=VIP
    standing "스탠딩" floor=1층 x=0 y=-160 w=600 h=120 capacity=300 grade=ST

* ``section NAME [floor=F] [x=N] [y=N]`` starts a block of seats; the ``rows`` lines
  that follow fill it from the top down. Rows are a letter range (``A-H``, I and O are
  skipped as Korean and Western halls do) or a number range (``1-10``); ``row K`` is a
  single row. ``seats 1-14`` numbers the seats left to right; ``aisle=7`` leaves a gap
  after seat 7; ``accessible=1,2`` marks wheelchair places; ``grade=`` is the price
  grade code the event prices.
* ``standing NAME w=N h=N capacity=N grade=CODE [floor=F] [x=N] [y=N]`` is a
  general-admission zone.
* ``stage TEXT`` names the stage drawn above the seats.

Coordinates are layout units: a seat is ``SEAT_PITCH`` wide and a row ``ROW_PITCH``
tall, and rows are centred inside their section, so ragged rows look like a real hall.
The whole drawing is shifted so that it starts at the top-left margin below the stage.
"""

import re
import shlex
import string
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

SEAT_PITCH = 20
ROW_PITCH = 22
MARGIN = 20
STAGE_HEIGHT = 40
MAX_SEATS = 20_000
MAX_SEATS_PER_ROW = 200
MAX_ROWS_PER_LINE = 60
# Bounds that keep every value within its database column and the drawing sane.
MAX_COORDINATE = 100_000
MAX_SEAT_NUMBER = 9_999
MAX_NAME, MAX_FLOOR = 40, 20  # Section.name, Section.floor
MAX_SECTIONS = 200

# Korean and Western halls skip I and O in row letters: they read as 1 and 0.
ROW_LETTERS = [c for c in string.ascii_uppercase if c not in "IO"]
GRADE_CODE = re.compile(r"^[A-Za-z0-9]{1,10}$")


@dataclass
class SeatPlan:
    row: str
    number: int
    grade_code: str
    is_accessible: bool
    x: int = 0
    y: int = 0
    label: str = ""


@dataclass
class SectionPlan:
    name: str
    floor: str
    kind: str
    x: int
    y: int
    line: int
    grade_code: str = ""
    capacity: int = 0
    has_faulty_rows: bool = False
    width: int = 0
    height: int = 0
    rows: list[list[SeatPlan]] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return f"{self.floor} {self.name}".strip()

    @property
    def seats(self) -> list[SeatPlan]:
        return [seat for row in self.rows for seat in row]


@dataclass
class LayoutPlan:
    stage_label: str
    sections: list[SectionPlan]
    width: int
    height: int

    @property
    def seat_count(self) -> int:
        return sum(len(s.seats) for s in self.sections)

    @property
    def standing_capacity(self) -> int:
        return sum(s.capacity for s in self.sections if s.kind == "standing")


class LayoutSpecError(ValueError):
    """The description has mistakes; `errors` lists each as "line N: message"."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _int(value: str, name: str, low: int = -MAX_COORDINATE, high: int = MAX_COORDINATE) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            _("%(name)s must be a whole number, not “%(value)s”.") % {"name": name, "value": value}
        ) from None
    if not low <= number <= high:
        raise ValueError(
            _("%(name)s must be between %(low)d and %(high)d, not %(value)s.")
            % {"name": name, "low": low, "high": high, "value": value}
        )
    return number


def _range(text: str, what: str, longest: int, highest: int) -> list[str]:
    """Expand "A-H", "1-10", "K" or "3" into the list of row or seat names: at most
    `longest` of them, numbers up to `highest` (checked before anything is expanded)."""
    start, sep, end = text.partition("-")
    if not sep:
        end = start
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        if first < 1 or last < first:
            raise ValueError(_("%(what)s range “%(text)s” must count upwards from 1.") % {"what": what, "text": text})
        if last > highest:
            raise ValueError(
                _("%(what)s numbers go up to %(highest)d, not %(last)d.")
                % {"what": what, "highest": highest, "last": last}
            )
        if last - first + 1 > longest:
            raise ValueError(_("That block is too large for one line."))
        return [str(n) for n in range(first, last + 1)]
    start, end = start.upper(), end.upper()
    if start in ROW_LETTERS and end in ROW_LETTERS and ROW_LETTERS.index(start) <= ROW_LETTERS.index(end):
        return ROW_LETTERS[ROW_LETTERS.index(start) : ROW_LETTERS.index(end) + 1]
    raise ValueError(_("“%(text)s” is not a %(what)s range such as A-H or 1-10.") % {"text": text, "what": what})


def _options(tokens: list[str], allowed: set[str]) -> dict[str, str]:
    options = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or key not in allowed:
            raise ValueError(
                _("Unknown option “%(token)s”; expected one of: %(allowed)s.")
                % {"token": token, "allowed": ", ".join(sorted(allowed))}
            )
        options[key] = value
    return options


def _too_many_places() -> str:
    # Each place is a row of every performance's inventory.
    return _("A layout may have at most %(max)d places, seats and standing places together.") % {"max": MAX_SEATS}


def _name(value: str) -> str:
    if len(value) > MAX_NAME:
        raise ValueError(_("A name may be at most %(max)d characters long.") % {"max": MAX_NAME})
    return value


def _floor(value: str) -> str:
    if len(value) > MAX_FLOOR:
        raise ValueError(_("floor= may be at most %(max)d characters long.") % {"max": MAX_FLOOR})
    return value


def _grade(value: str | None) -> str:
    if not value:
        raise ValueError(_("grade= is required (a code such as VIP, R or S)."))
    if not GRADE_CODE.match(value):
        raise ValueError(_("Grade code “%(code)s” must be 1-10 Latin letters or digits.") % {"code": value})
    return value


def parse_layout_spec(spec: str) -> LayoutPlan:
    """Parse and position a layout description, or raise LayoutSpecError."""
    errors: list[str] = []
    sections: list[SectionPlan] = []
    stage_label = "STAGE"
    current: SectionPlan | None = None

    places = 0  # seats and standing places so far: a description is refused before it builds too many
    skipping_rows = False  # after a section line refused: its rows are not another section's
    for line_no, raw in enumerate(spec.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            errors.append(_("line %(n)d: %(msg)s") % {"n": line_no, "msg": exc})
            continue
        keyword, args = tokens[0].lower(), tokens[1:]
        try:
            if keyword == "stage":
                stage_label = " ".join(args)[:40]
            elif keyword in ("section", "standing") and len(sections) >= MAX_SECTIONS:
                raise ValueError(_("A layout may have at most %(max)d sections.") % {"max": MAX_SECTIONS})
            elif keyword == "section":
                if not args or "=" in args[0] or not args[0].strip():
                    raise ValueError(_('section needs a name, e.g. section "A구역" floor=1층.'))
                opts = _options(args[1:], {"floor", "x", "y"})
                current = SectionPlan(
                    name=_name(args[0]),
                    floor=_floor(opts.get("floor", "")),
                    kind="seated",
                    x=_int(opts.get("x", "0"), "x"),
                    y=_int(opts.get("y", "0"), "y"),
                    line=line_no,
                )
                sections.append(current)
            elif keyword == "standing":
                if not args or "=" in args[0] or not args[0].strip():
                    raise ValueError(_('standing needs a name, e.g. standing "스탠딩" capacity=300.'))
                opts = _options(args[1:], {"floor", "x", "y", "w", "h", "capacity", "grade"})
                capacity = _int(opts.get("capacity", "0"), "capacity", 0, MAX_SEATS)  # a place is a row per performance
                if capacity < 1:
                    raise ValueError(_("A standing zone needs capacity= above zero."))
                if places + capacity > MAX_SEATS:
                    raise ValueError(_too_many_places())
                places += capacity  # counted before building: a line that fails half-way counts in full
                width, height = _int(opts.get("w", "200"), "w"), _int(opts.get("h", "80"), "h")
                if width < SEAT_PITCH or height < ROW_PITCH:
                    raise ValueError(_("A standing zone must be at least one seat wide and one row tall."))
                sections.append(
                    SectionPlan(
                        name=_name(args[0]),
                        floor=_floor(opts.get("floor", "")),
                        kind="standing",
                        x=_int(opts.get("x", "0"), "x"),
                        y=_int(opts.get("y", "0"), "y"),
                        width=width,
                        height=height,
                        capacity=capacity,
                        grade_code=_grade(opts.get("grade")),
                        line=line_no,
                    )
                )
                current = None
            elif keyword in ("rows", "row") and skipping_rows:
                continue  # the section line says what is wrong
            elif keyword in ("rows", "row"):
                if current is None:
                    raise ValueError(_("rows must follow a section line."))
                if len(args) < 3 or args[1] != "seats":
                    raise ValueError(_("Write rows like: rows A-H seats 1-14 grade=R."))
                row_names = _range(args[0], _("row"), MAX_ROWS_PER_LINE, 999)
                seat_numbers = [int(n) for n in _range(args[2], _("seat"), MAX_SEATS_PER_ROW, MAX_SEAT_NUMBER)]
                block = len(row_names) * len(seat_numbers)
                if places + block > MAX_SEATS:
                    raise ValueError(_too_many_places())
                places += block
                opts = _options(args[3:], {"grade", "aisle", "accessible"})
                grade = _grade(opts.get("grade"))
                first, last = seat_numbers[0], seat_numbers[-1]
                # A number outside the row would silently do nothing: say so instead.
                aisles = {_int(v, "aisle", first, last) for v in opts.get("aisle", "").split(",") if v}
                accessible = {_int(v, "accessible", first, last) for v in opts.get("accessible", "").split(",") if v}
                existing = {row[0].row for row in current.rows}
                for row_name in row_names:
                    if row_name in existing:
                        raise ValueError(
                            _("Row %(row)s appears twice in section %(section)s.")
                            % {"row": row_name, "section": current.display_name}
                        )
                    row = [SeatPlan(row_name, n, grade, n in accessible) for n in seat_numbers]
                    # Remember aisle positions on the row's seats as extra x offsets.
                    shift = 0
                    for seat in row:
                        seat.x = shift
                        if seat.number in aisles:
                            shift += SEAT_PITCH
                    current.rows.append(row)
            else:
                raise ValueError(
                    _("Unknown line “%(keyword)s”; use section, rows, standing or stage.") % {"keyword": tokens[0]}
                )
        except ValueError as exc:
            errors.append(_("line %(n)d: %(msg)s") % {"n": line_no, "msg": exc})
            if keyword in ("rows", "row") and current is not None:
                current.has_faulty_rows = True
            if keyword in ("section", "standing"):
                current, skipping_rows = None, True
        else:
            if keyword in ("section", "standing"):
                skipping_rows = False

    for section in sections:
        if section.kind == "seated" and not section.rows and not section.has_faulty_rows:
            errors.append(
                _("line %(n)d: section %(name)s has no rows.") % {"n": section.line, "name": section.display_name}
            )
    names = [s.display_name for s in sections]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(_("Section %(name)s is defined more than once.") % {"name": name})
    if not sections and not errors:
        errors.append(_("The description is empty: add at least one section or standing zone."))
    if errors:
        raise LayoutSpecError(errors)

    _position_seats(sections)
    errors.extend(_overlaps(sections))
    if errors:
        raise LayoutSpecError(errors)
    width, height = _normalise(sections)
    return LayoutPlan(stage_label=stage_label, sections=sections, width=width, height=height)


def _position_seats(sections: list[SectionPlan]) -> None:
    for section in sections:
        if section.kind != "seated":
            continue
        row_widths = [row[-1].x + SEAT_PITCH * len(row) for row in section.rows]
        section.width = max(row_widths)
        section.height = ROW_PITCH * len(section.rows)
        for index, (row, row_width) in enumerate(zip(section.rows, row_widths, strict=True)):
            left = section.x + (section.width - row_width) // 2
            y = section.y + index * ROW_PITCH + ROW_PITCH // 2
            for position, seat in enumerate(row):
                seat.x = left + seat.x + position * SEAT_PITCH + SEAT_PITCH // 2
                seat.y = y
                seat.label = f"{section.display_name} {seat.row}열 {seat.number}번"


def _overlaps(sections: list[SectionPlan]) -> list[str]:
    errors = []
    for i, a in enumerate(sections):
        for b in sections[i + 1 :]:
            if a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height:
                errors.append(
                    _("line %(n)d: section %(b)s overlaps section %(a)s; move it with x= and y=.")
                    % {"n": b.line, "a": a.display_name, "b": b.display_name}
                )
    return errors


def _normalise(sections: list[SectionPlan]) -> tuple[int, int]:
    """Shift everything so the drawing starts below the stage; return its size."""
    min_x = min(s.x for s in sections)
    min_y = min(s.y for s in sections)
    dx = MARGIN - min_x
    dy = MARGIN * 2 + STAGE_HEIGHT - min_y
    for section in sections:
        section.x += dx
        section.y += dy
        for seat in section.seats:
            seat.x += dx
            seat.y += dy
    width = max(s.x + s.width for s in sections) + MARGIN
    height = max(s.y + s.height for s in sections) + MARGIN
    return width, height
