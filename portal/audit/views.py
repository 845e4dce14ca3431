import csv
import json

from django.http import StreamingHttpResponse
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from .filtersets import AuditEventFilterSet
from .selectors import audit_events
from .services import record_download
from .tables import AuditEventTable

CSV_COLUMNS = ["time", "actor", "action", "target", "before", "after", "detail", "job", "source_ip"]


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value: str) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula; directory data is untrusted.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_COLUMNS)
            for e in events.iterator(chunk_size=2000):
                yield writer.writerow([_csv_cell(str(v)) for v in (
                    e.time.isoformat(), e.actor_name or "system", e.action, e.target,
                    json.dumps(e.before), json.dumps(e.after), json.dumps(e.detail), e.job_id or "",
                    e.source_ip or "")])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
        return response
