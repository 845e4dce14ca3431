import django_filters
from django import forms
from django.db.models import Q

from ..models import WritebackPlanRow
from .choices import RISKS, CloudSyncVerdict, RowSection

ANY_YES_NO = forms.Select(choices=(("", "Any"), ("true", "Yes"), ("false", "No")))


class WritebackPlanRowFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or DN contains")
    section = django_filters.ChoiceFilter(choices=RowSection.choices, label="Section")
    risk = django_filters.ChoiceFilter(choices=[(k, k.replace("_", " ")) for k in RISKS], method="by_risk",
                                       label="Risk")
    collides = django_filters.BooleanFilter(field_name="collides", label="Collides", widget=ANY_YES_NO)
    truncated = django_filters.BooleanFilter(field_name="truncated", label="Name cut", widget=ANY_YES_NO)
    cloud_sync = django_filters.ChoiceFilter(choices=CloudSyncVerdict.choices, label="Cloud Sync")

    class Meta:
        model = WritebackPlanRow
        fields = ["q", "section", "risk", "collides", "truncated", "cloud_sync"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(display_name__icontains=value) | Q(current_dn__icontains=value)
                               | Q(planned_dn__icontains=value) | Q(object_id=value.strip().lower()))

    def by_risk(self, queryset, name, value):
        return queryset.filter(risks_key__contains=f",{value},")
