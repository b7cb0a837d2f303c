"""Draw a seat map as inline SVG on the server.

Built as one string rather than through the template engine: a 2,000-seat hall is
2,000 elements, and a template loop costs several times more per element than an
f-string. Every dynamic value is escaped here, since the result is marked safe.
"""

from html import escape

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ticketing.formatting import krw

from .layout_builder import MARGIN, SEAT_PITCH, STAGE_HEIGHT
from .selectors import SeatMap

SEAT_RADIUS = SEAT_PITCH // 2 - 2
TAKEN_COLOUR = "#c9ccd1"


def _grade_text(grade) -> str:
    # Previews have no prices yet: show just the grade.
    if grade.price is None:
        return escape(grade.display_name)
    return f"{escape(grade.display_name)} {escape(krw(grade.price))}"


STAFF_COLOURS = {"held": "#f59e0b", "sold": TAKEN_COLOUR, "blocked": "#111827"}


def render_seat_map(
    seat_map: SeatMap,
    *,
    selectable: bool = False,
    selected: frozenset[int] = frozenset(),
    staff_states: dict | None = None,
) -> SafeString:
    """The map as SVG. `selectable` makes free seats keyboard- and click-selectable
    checkboxes (static/js/seatmap.js drives them); `selected` pre-checks item ids.
    `staff_states` (item id -> StaffPlaceState) draws the staff view instead: every
    seat selectable, coloured by state, titled with who holds it."""
    layout = seat_map.layout
    grades = {grade.id: grade for grade in seat_map.grades}
    grade_by_code = {grade.code: grade for grade in seat_map.grades}
    width, height = max(layout.width, 200), max(layout.height, 120)
    # A map to pick seats on is a group of checkboxes; role="img" would hide them from
    # screen readers (an image's children are presentational).
    role = "group" if selectable or staff_states is not None else "img"
    parts = [
        f'<svg class="seatmap" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
        f'role="{role}" aria-labelledby="seatmap-title"><title id="seatmap-title">{escape(_("Seat map"))}</title>',
        f'<rect class="stage" x="{MARGIN}" y="{MARGIN}" width="{width - 2 * MARGIN}" height="{STAGE_HEIGHT}" rx="6"/>',
        f'<text class="stage-label" x="{width // 2}" y="{MARGIN + STAGE_HEIGHT // 2 + 5}" text-anchor="middle">'
        f"{escape(layout.stage_label)}</text>",
    ]
    for section in seat_map.sections:
        name = escape(section.display_name)
        if section.is_standing:
            grade = grade_by_code.get(section.grade_code)
            free = seat_map.standing_free.get(section.id, 0)
            colour = grade.colour if grade and free else TAKEN_COLOUR
            price = f" · {_grade_text(grade)}" if grade else ""
            remaining = escape(_("%(count)s places left") % {"count": intcomma(free)})
            parts.append(
                f'<g class="zone{"" if free else " taken"}" data-section="{section.id}">'
                f"<title>{name}{price} · {remaining}</title>"
                f'<rect x="{section.x}" y="{section.y}" width="{section.width}" height="{section.height}" '
                f'rx="8" fill="{colour}"/>'
                f'<text x="{section.x + section.width // 2}" y="{section.y + section.height // 2}" '
                f'text-anchor="middle">{name}</text>'
                f'<text class="zone-count" x="{section.x + section.width // 2}" '
                f'y="{section.y + section.height // 2 + 16}" text-anchor="middle">{remaining}</text></g>'
            )
        else:
            parts.append(
                f'<text class="section-label" x="{section.x + section.width // 2}" y="{section.y - 4}" '
                f'text-anchor="middle">{name}</text>'
            )
    # Held or sold, a seat a customer cannot choose is named so (which it is is nobody's business).
    taken_word = escape(pgettext("seat", "unavailable"))
    accessible_word = escape(_("wheelchair space"))
    state_words = {"free": _("free"), "held": _("held"), "sold": _("sold"), "blocked": _("blocked")}
    # Formatting a price costs microseconds; thousands of seats share a handful of grades.
    grade_texts = {grade.id: _grade_text(grade) for grade in seat_map.grades}
    for seat in seat_map.seats:
        grade = grades[seat.grade_id]
        if staff_states is not None:
            place = staff_states[seat.item_id]
            colour = STAFF_COLOURS.get(place.state, grade.colour)
            title = f"{escape(seat.label)} · {grade_texts[grade.id]} · {escape(state_words[place.state])}"
            if place.holder:
                title += f" · {escape(place.holder)}"
            parts.append(
                f'<circle class="seat state-{place.state}" cx="{seat.x}" cy="{seat.y}" r="{SEAT_RADIUS}" '
                f'fill="{colour}" data-item="{seat.item_id}" role="checkbox" tabindex="-1" aria-checked="false">'
                f"<title>{title}</title></circle>"
            )
            continue
        classes = "seat" if seat.is_free else "seat taken"
        if seat.is_accessible:
            classes += " accessible"
        state = grade_texts[grade.id] if seat.is_free else taken_word
        if seat.is_accessible:  # said, not only drawn (screen readers read the title)
            state += f" · {accessible_word}"
        control = ""
        if selectable and seat.is_free:
            checked = seat.item_id in selected
            if checked:
                classes += " selected"
            control = f' role="checkbox" tabindex="-1" aria-checked="{"true" if checked else "false"}"'
        parts.append(
            f'<circle class="{classes}" cx="{seat.x}" cy="{seat.y}" r="{SEAT_RADIUS}" '
            f'fill="{grade.colour if seat.is_free else TAKEN_COLOUR}" data-item="{seat.item_id}" '
            f'data-grade="{escape(grade.code)}"{control}><title>{escape(seat.label)} · {state}</title></circle>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
