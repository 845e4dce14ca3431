import django_filters
from django import forms
from django.contrib.auth import get_user_model

from .choices import JobStatus
from .models import Job
from .runner import JOB_KINDS


def _kind_choices():
    return sorted(((kind, cls.name) for kind, cls in JOB_KINDS.items()), key=lambda c: c[1])


class JobFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, label="Status",
                                                 widget=forms.CheckboxSelectMultiple)
    kind = django_filters.ChoiceFilter(choices=_kind_choices, label="Kind", empty_label="Any kind")
    user = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.order_by("username"),
                                            label="Started by", empty_label="Anyone")
    q = django_filters.CharFilter(field_name="target", lookup_expr="icontains", label="Target contains")

    class Meta:
        model = Job
        fields = ["status", "kind", "user", "q"]
