"""The approve and reject POSTs of every area, answered the same way: an invalid form says what to correct, a
refused decision (four eyes, a stale page, an expired request) says why and that nothing was changed, a decision
taken says so; the person is back on the request's page either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect

from .forms import ApproveForm


def decided(request, *, obj, decide: Callable[[], Any], done: str,
            refused: tuple[type[Exception], ...]) -> HttpResponse:
    try:
        decide()
    except (*refused, PermissionDenied) as exc:
        messages.warning(request, f"{exc} Nothing was changed.")
    else:
        messages.info(request, done)
    return redirect(obj)


def signed(request, *, obj, form: ApproveForm, decide: Callable[[], Any], done: str,
           refused: tuple[type[Exception], ...]) -> HttpResponse:
    """``decide`` runs only on a valid form (it reads form.valid_for, form.cleaned_data)."""
    if not form.is_valid():
        messages.error(request, form.problem())
        return redirect(obj)
    return decided(request, obj=obj, decide=decide, done=done, refused=refused)
