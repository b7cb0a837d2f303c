from django import template

from ticketing.formatting import krw as format_krw

register = template.Library()


@register.filter
def krw(amount):
    """Render an integer amount of won: {{ grade.price|krw }}."""
    if amount is None or amount == "":
        return ""
    return format_krw(int(amount))
