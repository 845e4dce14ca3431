"""Bad input around conditional access, said plainly while the rest of the report is produced: no P1 licence
(policies unreadable), roles the app may not read, a policy group that cannot be read, a deleted user named,
an unknown state."""

from __future__ import annotations

from diagnostics_app.mfa import classify as mc
from diagnostics_app.mfa.collect import CollectResult, UserRecord
from diagnostics_app.mfa.collect_policies import evaluate_users, read_policies
from portal.connectors.graph import ConditionalAccessPolicy, Forbidden, LicenceRequired, NotFound


class Say:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def ca(pid: str, state: str, users: dict) -> ConditionalAccessPolicy:
    return ConditionalAccessPolicy(id=pid, display_name=f"Policy {pid}", state=state, users=users, operator="OR",
                                   built_in_controls=("mfa",), custom_controls=(), terms_of_use=(), strength=None,
                                   strength_id=None)


class Graph:
    def __init__(self, *, licence: bool = True, roles_error: Exception | None = None, policies=()) -> None:
        self.licence, self.roles_error, self.policies = licence, roles_error, list(policies)

    def security_defaults_enabled(self):
        return False

    def conditional_access_policies(self):
        if not self.licence:
            raise LicenceRequired("read conditional access policies", status=403)
        return iter(self.policies)

    def authentication_strengths(self):
        return iter(())

    def directory_roles(self):
        if self.roles_error:
            raise self.roles_error
        return []

    def get_group(self, gid, select=None):
        raise NotFound(f"read group {gid}", status=404) if gid == "gone" else Forbidden("read group", status=403)

    def iter_group_transitive_members(self, gid, select=None):
        return iter(())


def result() -> CollectResult:
    users = {"u1": UserRecord(mc.UserFacts(id="u1", upn="a@contoso.com", enabled=True))}
    users["u1"].verdict = mc.classify(users["u1"].facts, None, (), [mc.Method("a", "microsoftAuthenticator")])
    return CollectResult(started=None, users=users, groups={})  # type: ignore[arg-type]


def test_without_p1_the_policies_are_not_read_and_it_says_why():
    say = Say()
    read = read_policies(Graph(licence=False), result(), say)
    assert not read.read and read.policies == [] and "needs Microsoft Entra ID P1" in read.message
    assert say.warnings == [read.message]


def test_unreadable_roles_groups_and_names_are_problems_not_failures():
    say = Say()
    res = result()
    policies = [ca("p1", "enabled", {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"],
                                     "includeGroups": ["gone", "secret"], "excludeUsers": ["ghost"]}),
                ca("p2", "enabledButSomethingNew", {"includeUsers": ["All"]})]
    read = read_policies(Graph(roles_error=Forbidden("read directory roles", status=403), policies=policies), res,
                         say)
    assert read.read and len(read.policies) == 2
    assert any("Directory roles could not be read" in p for p in read.problems)
    assert any("state this portal does not know" in p for p in read.problems)
    problems = read.details[0]["problems"]
    assert any("gone, which no longer exists" in p for p in problems)
    assert any("secret, whose members could not be read" in p for p in problems)
    assert any("Names user ghost, who is not in the directory" in p for p in problems)
    evaluate_users(res, read)
    # the unknown state is shown, never enforcing: the user is not covered by it
    assert res.users["u1"].policy.outcome == "not_covered"
    assert {h.policy_id: h.status for h in res.users["u1"].policy.hits} == {"p2": "able"}
