import django_filters
from django.db.models import Q

from ..models import AddressFinding
from .choices import OBJECT_CLASSES, FindingCategory, FindingRule, FindingSeverity, FindingState
from .selectors import finding_choices

ATTRIBUTE_CHOICES = [(a, a) for a in ("displayName", "givenName", "mail", "mailNickname", "proxyAddresses",
                                      "sAMAccountName", "targetAddress", "userPrincipalName")]


class AddressFindingFilterSet(django_filters.FilterSet):
    """Filters of the findings page; the OU choices come from the scan shown."""

    q = django_filters.CharFilter(method="search", label="Object or value contains")
    severity = django_filters.ChoiceFilter(choices=FindingSeverity.choices, label="Severity")
    rule = django_filters.ChoiceFilter(choices=FindingRule.choices, label="Rule")
    category = django_filters.ChoiceFilter(choices=[c for c in FindingCategory.choices if c[0]],
                                           label="Connect Health category")
    object_class = django_filters.ChoiceFilter(choices=OBJECT_CLASSES, label="Object type")
    attribute = django_filters.ChoiceFilter(method="by_attribute", label="Attribute")
    ou = django_filters.ChoiceFilter(field_name="ou", label="OU")
    state = django_filters.ChoiceFilter(choices=FindingState.choices, label="History")

    class Meta:
        model = AddressFinding
        fields = ["q", "severity", "rule", "category", "object_class", "attribute", "ou", "state"]

    def __init__(self, *args, scan=None, **kwargs):
        super().__init__(*args, **kwargs)
        attributes = list(ATTRIBUTE_CHOICES)
        if scan is not None:
            found = finding_choices(scan)
            self.filters["ou"].extra["choices"] = [(o, o) for o in found["ou"]]
            known = {a for a, _ in attributes}
            attributes += [(a, a) for a in found["attribute"] if a not in known]
        self.filters["attribute"].extra["choices"] = attributes

    def search(self, queryset, name, value):
        return queryset.filter(Q(dn__icontains=value) | Q(value__icontains=value))

    def by_attribute(self, queryset, name, value):
        return queryset.filter(attribute__iexact=value)
