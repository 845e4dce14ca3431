"""Badge colours and small helpers of the DL migration pages (one source: choices.py)."""

from django import template

from migrations_app import takeback
from migrations_app.choices import (
    BATCH_LIST_OUTCOME_COLOURS,
    BATCH_LIST_RUN_COLOURS,
    BATCH_STATUS_COLOURS,
    CHECK_OUTCOME_COLOURS,
    LIST_KIND_COLOURS,
    LIST_STATE_COLOURS,
    MIGRATION_STATUS_COLOURS,
    CheckOutcome,
    ListKind,
    ListState,
    MigrationStatus,
)

register = template.Library()

def _label(choices, value) -> str:
    try:
        return choices(value).label
    except ValueError:
        return str(value)


@register.filter
def migration_colour(status: str) -> str:
    return MIGRATION_STATUS_COLOURS.get(status, "grey")


@register.filter
def migration_label(status: str) -> str:
    return _label(MigrationStatus, status)


@register.filter
def state_colour(state: str) -> str:
    return LIST_STATE_COLOURS.get(state, "grey")


@register.filter
def state_label(state: str) -> str:
    return _label(ListState, state)


@register.filter
def kind_colour(kind: str) -> str:
    return LIST_KIND_COLOURS.get(kind, "grey")


@register.filter
def kind_label(kind: str) -> str:
    return _label(ListKind, kind)


@register.filter
def outcome_colour(outcome: str) -> str:
    return CHECK_OUTCOME_COLOURS.get(outcome, "grey")


@register.filter
def outcome_label(outcome: str) -> str:
    return _label(CheckOutcome, outcome)


@register.filter
def more_than(total, shown) -> int:
    """How many objects of a check are not listed (total minus the listed ones)."""
    try:
        return max(0, int(total) - len(shown or []))
    except (TypeError, ValueError):
        return 0


@register.filter
def batch_colour(status: str) -> str:
    return BATCH_STATUS_COLOURS.get(status, "grey")


@register.filter
def batch_outcome_colour(outcome: str) -> str:
    return BATCH_LIST_OUTCOME_COLOURS.get(outcome, "grey")


@register.filter
def batch_run_colour(state: str) -> str:
    return BATCH_LIST_RUN_COLOURS.get(state, "grey")


@register.filter
def attribute_value(value) -> str:
    """A value of the take-back preview as the log shows it ("(empty)", addresses joined)."""
    return takeback.show(tuple(value) if isinstance(value, list) else value)
