"""Filters of the DL inventory and the migration list."""

import django_filters
from django import forms
from django.db.models import Q

from .choices import ListKind, ListState, MigrationStatus
from .models import DistributionList, Migration
from .selectors import ou_choices

SIZE_RANGES = [
    ("0", "Empty"),
    ("1-99", "1 – 99"),
    ("100-999", "100 – 999"),
    ("1000-4999", "1,000 – 4,999"),
    ("5000-", "5,000 or more"),
]
YES_NO = [("yes", "Yes"), ("no", "No")]


class DistributionListFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search name, mail or alias")
    ou = django_filters.ChoiceFilter(choices=ou_choices, label="OU", empty_label="Any OU")
    kind = django_filters.ChoiceFilter(choices=ListKind.choices, label="Kind", empty_label="Any kind")
    state = django_filters.MultipleChoiceFilter(choices=ListState.choices, label="State",
                                                widget=forms.CheckboxSelectMultiple)
    size = django_filters.ChoiceFilter(choices=SIZE_RANGES, method="filter_size", label="Members",
                                       empty_label="Any size")
    nested = django_filters.ChoiceFilter(choices=YES_NO, method="filter_nested", label="Nested",
                                         empty_label="Either")
    has_dependencies = django_filters.ChoiceFilter(choices=YES_NO, method="filter_dependencies",
                                                   label="Has dependencies", empty_label="Either")

    class Meta:
        model = DistributionList
        fields = ["q", "ou", "kind", "state", "size", "nested", "has_dependencies"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(mail__icontains=value) | Q(alias__icontains=value)
                               | Q(display_name__icontains=value))

    def filter_size(self, queryset, name, value):
        low, _, high = value.partition("-")
        queryset = queryset.filter(member_count__gte=int(low))
        if not _:
            return queryset.filter(member_count=int(low))
        return queryset.filter(member_count__lte=int(high)) if high else queryset

    def filter_nested(self, queryset, name, value):
        flat = Q(child_lists=[]) & Q(parent_lists=[])
        return queryset.exclude(flat) if value == "yes" else queryset.filter(flat)

    def filter_dependencies(self, queryset, name, value):
        return queryset.filter(dependency_count__gt=0) if value == "yes" else queryset.filter(dependency_count=0)


class MigrationFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=MigrationStatus.choices, label="Status",
                                                 widget=forms.CheckboxSelectMultiple)
    q = django_filters.CharFilter(method="search", label="Mail or name contains")

    class Meta:
        model = Migration
        fields = ["status", "q"]

    def search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(mail__icontains=value) | Q(group_name__icontains=value)) if value else queryset
