"""The lab tenant's data: Entra ID objects, Exchange Online recipients, reports, audit log, sync
server state and lab settings, in one SQLite file (stdlib ``sqlite3``, WAL mode).

Who calls this module:

- the lab cloud service (``portal.lab.cloud.app``), to answer Graph, Exchange and PowerShell calls;
- the lab sync engine and the scenario seeder, to project the lab AD into the cloud (create,
  update, delete objects by id, find them by source anchor, record export errors);
- tests, to seed data directly and to switch fault injection on and off.

Several processes may open the same file at once (the service, a test, the sync engine): WAL mode
lets readers run beside one writer, and ``busy_timeout`` makes writers queue instead of failing.
Each thread gets its own connection.

Data model, in the cloud's own terms:

- **directory objects** (``kind`` user, group or contact): a JSON document of Graph properties
  (camelCase, as Graph returns them) plus indexed columns for the properties Graph filters on.
  ``source_anchor`` is what Entra Connect matches on (``onPremisesImmutableId`` for users; groups
  keep theirs internally, as Entra ID does). Memberships link object ids.
- **recipients**: the Exchange Online view of mail-enabled objects, a document of Exchange
  properties (PascalCase, as the cmdlets return them), linked to its directory object by
  ``ExternalDirectoryObjectId``. Link properties (``ManagedBy``, ``ModeratedBy``,
  ``AcceptMessagesOnlyFromSendersOrMembers``...) hold recipient ids; the service renders names.
- reports and logs: authentication methods per user, ``userRegistrationDetails`` rows, directory
  audit events; accepted domains, outbound connectors, recipient permissions.
- the Entra Connect server: scheduler settings, run history, export errors, pending exports.
- lab settings: fault injection (429 with Retry-After, 503, latency), premium licence switch.
- app registrations: client id and a salted hash of the client secret (never the secret itself).

Queries take a small condition tree (:class:`Compare`, :class:`StringMatch`, :class:`In`,
:class:`AnyOf`, :class:`And`, :class:`Or`, :class:`Not`) that this module compiles to SQL, so the
service's OData parser never writes SQL and 10,000-object pages stay index-backed.

No Django here.

Layout: ``CloudStore`` (here) is composed of one mixin per surface, over the same SQLite file:
``base`` (connections, transactions, tenant, app registrations, maintenance), ``directory``
(objects, memberships), ``exchange`` (recipients, permissions, accepted domains, connectors),
``auth_methods``, ``reports`` (registration report, audit log), ``settings`` (lab settings,
faults), ``connect`` (Entra Connect server state), ``conditional_access`` (policies, strengths, security
defaults, directory roles, sign-ins). ``common`` holds the constants, errors and time
helpers; ``query`` the condition tree and its SQL compiler; ``schema`` the tables. A new surface
adds its tables to ``schema._SCHEMA`` and a mixin module here.
"""

from __future__ import annotations

from pathlib import Path

from .auth_methods import AuthMethodsStoreMixin
from .base import StoreBase
from .common import DB_NAME
from .conditional_access import ConditionalAccessStoreMixin
from .connect import ConnectStoreMixin
from .directory import DirectoryStoreMixin
from .exchange import ExchangeStoreMixin
from .reports import ReportsStoreMixin
from .settings import SettingsStoreMixin


class CloudStore(StoreBase, DirectoryStoreMixin, ExchangeStoreMixin, AuthMethodsStoreMixin, ReportsStoreMixin,
                 SettingsStoreMixin, ConnectStoreMixin, ConditionalAccessStoreMixin):
    """The lab tenant's database. Cheap to create; open one per process (connections are per thread).

    Every write method commits on return unless it runs inside :meth:`transaction`, which groups
    many writes into one commit (the seeder creates 10,000 users in well under a second that way).
    """

    @classmethod
    def open(cls, *, data_dir: Path) -> CloudStore:
        return cls(Path(data_dir) / DB_NAME)
