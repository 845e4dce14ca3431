import django_filters

from .models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_name", lookup_expr="iexact", label="Who")
    action = django_filters.CharFilter(field_name="action", lookup_expr="istartswith", label="Action starts with")
    target = django_filters.CharFilter(field_name="target", lookup_expr="icontains", label="Target contains")
    since = django_filters.DateTimeFilter(field_name="time", lookup_expr="gte", label="From (YYYY-MM-DD)")
    until = django_filters.DateTimeFilter(field_name="time", lookup_expr="lte", label="Until (YYYY-MM-DD)")
    job = django_filters.NumberFilter(field_name="job_id", label="Job #")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target", "since", "until", "job"]
