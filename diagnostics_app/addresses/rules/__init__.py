"""Address repair's rules: pure functions over directory values (no Django, no I/O), so that the scan job,
``manage.py check_values`` and the tests run the same code. See each module for its sources."""

from .scan import ExportError, ScanConfig, Scanner, cloud_object, evaluate
from .types import Action, Category, CloudObject, Entry, ErrorType, Finding, Fix, Rule, Severity
from .values import entry

__all__ = ["Action", "Category", "CloudObject", "Entry", "ErrorType", "ExportError", "Finding", "Fix", "Rule",
           "ScanConfig", "Scanner", "Severity", "cloud_object", "entry", "evaluate"]
