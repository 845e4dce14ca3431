import json

from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from portal.exports import CSV_TYPE, csv_lines, download

from .filtersets import AuditEventFilterSet
from .selectors import audit_events
from .services import record_download
from .tables import AuditEventTable

CSV_COLUMNS = ["time", "actor", "action", "target", "before", "after", "detail", "job", "source_ip"]


class AuditEventListView(SingleTableMixin, FilterView):
    required_permissions = ("audit.view_auditevent",)
    table_class = AuditEventTable
    filterset_class = AuditEventFilterSet
    template_name = "audit/audit_list.html"

    def get_queryset(self):
        return audit_events()


    def render_to_response(self, context, **kwargs):
        if self.request.GET.get("export") == "csv":
            record_download(user=self.request.user, what="audit_log", target="audit", request=self.request,
                            format="csv", rows=self.object_list.count())
            return self._csv(self.object_list)
        return super().render_to_response(context, **kwargs)

    def _csv(self, events):
        rows = ([e.time.isoformat(), e.actor_name or "system", e.action, e.target, json.dumps(e.before),
                 json.dumps(e.after), json.dumps(e.detail), e.job_id or "", e.source_ip or ""]
                for e in events.iterator(chunk_size=2000))
        return download(csv_lines(CSV_COLUMNS, rows), name="audit-events.csv", content_type=CSV_TYPE)
