import django_filters
from django import forms
from django.db.models import Q

from ..models import MfaUserRow
from .choices import MethodFamily, MfaClass

YES_NO = (("true", "Yes"), ("false", "No"))
# "Any", not Django's "Unknown": the filter is off, nothing about the users is unknown.
ANY_YES_NO = forms.Select(choices=(("", "Any"), *YES_NO))


class MfaUserRowFilterSet(django_filters.FilterSet):
    """Filters of the MFA report; department and group choices come from the snapshot shown."""

    q = django_filters.CharFilter(method="search", label="User contains")
    classification = django_filters.ChoiceFilter(choices=MfaClass.choices, label="Classification")
    method = django_filters.ChoiceFilter(choices=MethodFamily.choices, method="by_method", label="Usable method")
    department = django_filters.ChoiceFilter(field_name="department", label="Department")
    group = django_filters.ChoiceFilter(method="by_group", label="Group")
    admin = django_filters.BooleanFilter(field_name="is_admin", label="Administrator", widget=ANY_YES_NO)
    enabled = django_filters.BooleanFilter(field_name="enabled", label="Account enabled", widget=ANY_YES_NO)

    class Meta:
        model = MfaUserRow
        fields = ["q", "classification", "method", "department", "group", "admin", "enabled"]

    def __init__(self, *args, snapshot=None, **kwargs):
        super().__init__(*args, **kwargs)
        if snapshot is not None:
            self.filters["department"].extra["choices"] = [(d, d) for d in snapshot.departments]
            self.filters["group"].extra["choices"] = sorted(((gid, name) for gid, name in snapshot.groups.items()),
                                                            key=lambda c: c[1].lower())

    def search(self, queryset, name, value):
        return queryset.filter(Q(upn__icontains=value) | Q(display_name__icontains=value) | Q(user_id=value.lower()))

    def by_method(self, queryset, name, value):
        return queryset.filter(usable_key__contains=f",{value},")

    def by_group(self, queryset, name, value):
        return queryset.filter(groups_key__contains=f",{value},")
