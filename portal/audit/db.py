"""The audit table's append-only guard in the database itself: triggers that refuse UPDATE and DELETE
(and TRUNCATE on PostgreSQL) whatever code or person sends them, not only the ORM's manager."""

from __future__ import annotations

TABLE = "audit_auditevent"
MESSAGE = "audit events are append-only"

_SQLITE_CREATE = [
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
]
_SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update;", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete;"]

_PG_CREATE = [
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$;",
    f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only();",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();",
]
_PG_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE};",
            f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE};"]


def create_statements(vendor: str) -> list[str]:
    return {"sqlite": _SQLITE_CREATE, "postgresql": _PG_CREATE}.get(vendor, [])


def drop_statements(vendor: str) -> list[str]:
    return {"sqlite": _SQLITE_DROP, "postgresql": _PG_DROP}.get(vendor, [])


def install(schema_editor) -> None:
    for sql in create_statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)


def uninstall(schema_editor) -> None:
    for sql in drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)
