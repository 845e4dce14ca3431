from django import template

register = template.Library()


@register.filter
def log_time(value) -> str:
    """HH:MM:SS.mmm: a log is read at the millisecond, Django's date filter stops at the second."""
    return f"{value:%H:%M:%S}.{value.microsecond // 1000:03d}" if value else ""


@register.filter
def epoch_ms(value) -> int:
    return int(value.timestamp() * 1000) if value else 0
