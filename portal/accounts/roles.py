"""The four roles and what each may do. The single source: groups are synced from this on migrate.

Deny by default: a permission appears here only for the roles that need it.
"""

from __future__ import annotations

HELPDESK = "Helpdesk"
ADMINISTRATOR = "Administrator"
APPROVER = "Approver"
AUDITOR = "Auditor"

ROLE_DESCRIPTIONS: dict[str, str] = {
    HELPDESK: "Runs preflights and single migrations, watches jobs.",
    ADMINISTRATOR: "Runs every action, reads every report and the audit log.",
    APPROVER: "Signs off batches requested by someone else.",
    AUDITOR: "Reads reports, jobs and the audit log; changes nothing.",
}

ROLE_PERMISSIONS: dict[str, set[str]] = {
    HELPDESK: {
        "accounts.view_directory",
        "accounts.view_dl_migration",
        "migrations_app.run_preflight",
        "migrations_app.migrate_dl",
        "jobs.view_job",
        "jobs.run_connectivity_check",
        "jobs.cancel_job",
    },
    ADMINISTRATOR: {
        "accounts.view_directory",
        "accounts.view_dl_migration",
        "migrations_app.run_preflight",
        "migrations_app.migrate_dl",
        "migrations_app.approve_migration",
        "migrations_app.change_migrated_dl",
        "migrations_app.restore_dl",
        "migrations_app.manage_migration_settings",
        "accounts.view_address_repair",
        "accounts.view_mfa_report",
        "diagnostics_app.run_mfa_snapshot",
        "diagnostics_app.request_mfa_wave_groups",
        "diagnostics_app.approve_mfa_wave_groups",
        "diagnostics_app.run_address_scan",
        "diagnostics_app.plan_address_fix",
        "diagnostics_app.approve_address_fix",
        "accounts.view_diagnostics",
        "accounts.view_writeback_plan",
        "diagnostics_app.run_writeback_plan",
        "diagnostics_app.approve_writeback_plan",
        "diagnostics_app.confirm_writeback_step",
        "jobs.view_job",
        "jobs.run_connectivity_check",
        "jobs.cancel_job",
        "jobs.cancel_any_job",
        "jobs.resume_job",
        "audit.view_auditevent",
        "accounts.manage_lab",
        "accounts.unlock_sign_in",
    },
    APPROVER: {
        "accounts.view_directory",
        "accounts.view_dl_migration",
        "migrations_app.approve_migration",
        "accounts.view_address_repair",
        "diagnostics_app.approve_address_fix",
        "diagnostics_app.approve_mfa_wave_groups",
        "accounts.view_diagnostics",
        "accounts.view_writeback_plan",
        "diagnostics_app.approve_writeback_plan",
        "jobs.view_job",
    },
    AUDITOR: {
        "accounts.view_directory",
        "accounts.view_dl_migration",
        "accounts.view_address_repair",
        "accounts.view_mfa_report",
        "accounts.view_diagnostics",
        "accounts.view_writeback_plan",
        "jobs.view_job",
        "audit.view_auditevent",
    },
}


def roles_granting(permission: str) -> list[str]:
    """Names of the roles holding `permission`, for the 403 page's "you need …" sentence."""
    return [role for role, perms in ROLE_PERMISSIONS.items() if permission in perms]
