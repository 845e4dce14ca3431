"""How a view says what it needs. A view that says nothing is refused (PermissionRequiredMiddleware)."""

from __future__ import annotations

from collections.abc import Callable


def requires(*permissions: str) -> Callable:
    """Mark a function view with the permissions a user must hold to reach it."""

    def mark(view: Callable) -> Callable:
        view.required_permissions = tuple(permissions)
        return view

    return mark


def required_permissions_of(view_func: Callable) -> tuple[str, ...] | None:
    view_class = getattr(view_func, "view_class", None)
    if view_class is not None and hasattr(view_class, "required_permissions"):
        return tuple(view_class.required_permissions)
    return getattr(view_func, "required_permissions", None)


def is_public(view_func: Callable) -> bool:
    # Django's @login_not_required sets this; only the login page and static helpers use it.
    return getattr(view_func, "login_required", True) is False
