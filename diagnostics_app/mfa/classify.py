"""Who can really satisfy MFA: one user's report row, audit trail and methods in, a class and its evidence out.

Pure functions: no Graph, no ORM, no clock. The snapshot job (diagnostics_app/mfa/collect.py) gathers the
inputs; this module decides.

Why the audit log matters (docs/seed-field-notes.txt, "Are my users registered for Azure MFA?"): two users
scanned the Authenticator QR code; one finished the verification, the other closed the browser. Both
show the same methods list (password + Microsoft Authenticator). What tells them apart is the directory
audit: the finished one has "User started security info registration" and "User registered security
info" after the "Update user" by "Azure MFA StrongAuthenticationService" that stamped the app details;
the other has only that "Update user". A device added that way, with no completed registration after
it, is listed but not usable.

Classes (diagnostics_app/mfa/choices.py MfaClass), decided in this order:

1. no report row and no method read: *not evaluated* (kept and marked, never guessed);
2. no usable MFA method left once unverified registrations are set aside:
   administrator -> *administrator without a strong method*; a pending (unverified) device ->
   *registered but not usable*; registered per the report -> *registered, not capable by policy*;
   else *not registered*;
3. usable methods: administrator with SMS/voice only -> *administrator without a strong method*;
   the report says registered but not capable (and the audit does not contradict it) ->
   *registered, not capable by policy*; phone only -> *SMS or voice only*; a passwordless method ->
   *passwordless capable*; else *MFA capable*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any

import orjson

from portal.frozen import frozen_instance

from .choices import MethodFamily as F
from .choices import MfaClass as C

# --------------------------------------------------------------------------------------------
# method names -> families

# userRegistrationDetails.methodsRegistered values (Graph v1.0 documentation of the resource)
REPORT_METHODS: dict[str, str] = {
    "microsoftauthenticatorpush": F.AUTHENTICATOR,
    "microsoftauthenticatorpasswordless": F.AUTHENTICATOR_PASSWORDLESS,
    "passwordlessmicrosoftauthenticator": F.AUTHENTICATOR_PASSWORDLESS,
    "softwareonetimepasscode": F.SOFTWARE_OATH,
    "hardwareonetimepasscode": F.HARDWARE_OATH,
    "fido2securitykey": F.FIDO2,
    "passkeydevicebound": F.FIDO2,
    "passkeydeviceboundauthenticator": F.FIDO2,
    "passkeydeviceboundwindowshello": F.FIDO2,
    "passkeysynced": F.FIDO2,
    "windowshelloforbusiness": F.WINDOWS_HELLO,
    "macossecureenclavekey": F.PLATFORM,
    "mobilephone": F.PHONE,
    "alternatemobilephone": F.PHONE,
    "officephone": F.PHONE,
    "sms": F.PHONE,
    "voice": F.PHONE,
    "email": F.EMAIL,
    "temporaryaccesspass": F.TAP,
    "securityquestion": F.SECURITY_QUESTION,
    "externalauthmethod": F.EXTERNAL,
    "apppassword": F.APP_PASSWORD,
}

# /users/{id}/authentication/methods: the @odata.type without "#microsoft.graph." and "AuthenticationMethod"
METHOD_TYPES: dict[str, str | None] = {
    "password": None,  # everyone has it; never a second factor
    "microsoftauthenticator": F.AUTHENTICATOR,
    "passwordlessmicrosoftauthenticator": F.AUTHENTICATOR_PASSWORDLESS,
    "softwareoath": F.SOFTWARE_OATH,
    "hardwareoath": F.HARDWARE_OATH,
    "fido2": F.FIDO2,
    "windowshelloforbusiness": F.WINDOWS_HELLO,
    "platformcredential": F.PLATFORM,
    "phone": F.PHONE,
    "email": F.EMAIL,
    "temporaryaccesspass": F.TAP,
    "externalauthentication": F.EXTERNAL,
    "qrcodepin": F.EXTERNAL,
}

MFA_FAMILIES = frozenset({F.AUTHENTICATOR, F.AUTHENTICATOR_PASSWORDLESS, F.SOFTWARE_OATH, F.HARDWARE_OATH, F.FIDO2,
                          F.WINDOWS_HELLO, F.PLATFORM, F.PHONE, F.EXTERNAL})
STRONG_FAMILIES = MFA_FAMILIES - {F.PHONE}
PASSWORDLESS_FAMILIES = frozenset({F.AUTHENTICATOR_PASSWORDLESS, F.FIDO2, F.WINDOWS_HELLO, F.PLATFORM})
# what an Authenticator app registration brings (push and its one-time codes): set aside while unverified
AUTHENTICATOR_FAMILIES = frozenset({F.AUTHENTICATOR, F.SOFTWARE_OATH})

CAN_SATISFY = frozenset({C.MFA_CAPABLE, C.PASSWORDLESS, C.SMS_VOICE_ONLY})


def report_family(name: str) -> str:
    return REPORT_METHODS.get((name or "").strip().lower(), F.UNKNOWN)


@cache
def report_families(names: tuple[str, ...]) -> tuple[str, ...]:
    """The family of each name a report row lists: a tenant's rows list a few dozen combinations, asked for each
    of its users twice (which users to read, then the classification)."""
    return tuple(report_family(name) for name in names)


def method_family(method_type: str) -> str | None:
    key = (method_type or "").strip().lower()
    if key not in METHOD_TYPES:
        return F.UNKNOWN
    return METHOD_TYPES[key]


# --------------------------------------------------------------------------------------------
# audit events -> evidence

# activity (lower case) -> kind; "Update user" is decided by its modified properties
ACTIVITY_KINDS: dict[str, str] = {
    "user started security info registration": "started",
    "user registered security info": "registered",
    "user registered all required security info": "registered_all",
    "user changed default security info": "changed_default",
    "user deleted security info": "deleted",
    # Microsoft's spelling is "canceled" (audit activity reference, Authentication Methods); "cancelled" kept
    "user canceled security info registration": "cancelled",
    "user cancelled security info registration": "cancelled",
    "admin registered security info": "admin_registered",
    "admin updated security info": "admin_updated",
    "admin deleted security info": "admin_deleted",
}
COMPLETION_KINDS = frozenset({"registered", "registered_all", "changed_default", "admin_registered",
                              "default_method_set"})
# Re-registration. Entra logs no activity of its own for "Require re-register MFA" (Microsoft's audit activity
# reference lists none). The action deletes the user's phone numbers, Authenticator apps and software OATH
# tokens and deactivates hardware OATH tokens (Entra docs, "Manage user authentication methods"): each deletion
# is the documented "Admin deleted security info" (Authentication Methods service). Before 2023 it reset the
# user's StrongAuthenticationMethod instead, leaving the methods listed: an "Update user" (Core Directory) whose
# StrongAuthenticationMethod goes from a list to empty (MicrosoftDocs/azure-docs#86217). Either way the methods
# of these families registered before it cannot answer MFA until the user registers again.
REREGISTER_KINDS = frozenset({"admin_deleted", "reregistration_required"})
REREGISTER_FAMILIES = frozenset({F.PHONE, F.AUTHENTICATOR, F.AUTHENTICATOR_PASSWORDLESS, F.SOFTWARE_OATH,
                                 F.HARDWARE_OATH})
MFA_SERVICE = "azure mfa strongauthenticationservice"


@dataclass(frozen=True)
class Event:
    """One audit event about one user, as evidence.

    In a verdict's evidence an Event stays itself: the snapshot's rows are written by orjson, which writes a
    dataclass as its fields (times in ISO 8601, as isoformat writes them; the tuple as a list). Made into a dict
    in classify, they were ~18% of a 100,000-user classification."""

    id: str
    time: datetime | None
    activity: str
    kind: str  # see ACTIVITY_KINDS, plus app_detail (devices added/removed), default_method_set, other
    detail: str = ""
    actor: str = ""
    added_devices: tuple[str, ...] = ()  # app_detail: device names new in this update
    had_devices: int = 0  # app_detail: devices listed before this update


def _devices(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except (TypeError, ValueError):
        return []
    if isinstance(value, str):  # a JSON string holding the JSON list
        try:
            value = orjson.loads(value)
        except ValueError:
            return []
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def event_user_ids(audit: Any) -> list[str]:
    """The users an audit event is about: its User targets, else the user who acted."""
    ids = [str(t.id).lower() for t in audit.targets if t.id and (t.type or "User").lower() == "user"]
    if not ids and audit.initiated_by_user_id:
        ids = [str(audit.initiated_by_user_id).lower()]
    return ids


def new_event(*, id: str, time: datetime | None, activity: str, kind: str, detail: str = "",  # noqa: A002
              actor: str = "", added_devices: tuple[str, ...] = (), had_devices: int = 0) -> Event:
    """An :class:`Event` from its fields (an audit's, or the journal's row of it)."""
    # every field given: made as the constructor makes it, without its per-field object.__setattr__
    return frozen_instance(Event, id=id, time=time, activity=activity, kind=kind, detail=detail, actor=actor,
                           added_devices=added_devices, had_devices=had_devices)


def event_from_audit(audit: Any, user_id: str | None = None) -> Event | None:
    """A :class:`portal.connectors.graph.DirectoryAudit` as evidence, or None when it says nothing about MFA."""
    activity = audit.activity or ""
    actor = audit.initiated_by_upn or audit.initiated_by_app or ""
    kind = ACTIVITY_KINDS.get(activity.lower())
    if kind is not None:
        return new_event(id=audit.id, time=audit.activity_time, activity=activity, kind=kind,
                         detail=audit.result_reason or "", actor=actor)
    if activity.lower() != "update user":
        return None
    target = next((t for t in audit.targets if user_id is None or (t.id or "").lower() == user_id), None)
    props = {(name or "").strip('"'): (old, new) for name, old, new in (target.modified_properties if target else ())}
    if "StrongAuthenticationPhoneAppDetail" in props:
        old, new = props["StrongAuthenticationPhoneAppDetail"]
        before, after = _devices(old), _devices(new)
        known = {str(d.get("Id") or d.get("DeviceName")) for d in before}
        added = tuple(str(d.get("DeviceName") or d.get("Id") or "device") for d in after
                      if str(d.get("Id") or d.get("DeviceName")) not in known)
        detail = (f"Authenticator app details stamped: {', '.join(added)}" if added
                  else "Authenticator app details changed")
        return new_event(id=audit.id, time=audit.activity_time, activity=activity, kind="app_detail", detail=detail,
                         actor=actor, added_devices=added, had_devices=len(before))
    if "StrongAuthenticationMethod" in props:
        old, new = props["StrongAuthenticationMethod"]
        if _devices(old) and not _devices(new):
            return new_event(id=audit.id, time=audit.activity_time, activity=activity, kind="reregistration_required",
                             detail="Default MFA methods reset: the user must register again (Require re-register "
                                    "MFA)", actor=actor)
        return new_event(id=audit.id, time=audit.activity_time, activity=activity, kind="default_method_set",
                         detail="Default MFA method set (the user answered a prompt)", actor=actor)
    return None


# --------------------------------------------------------------------------------------------
# inputs and result


@dataclass(frozen=True)
class ReportRow:
    """The part of a userRegistrationDetails row the classification reads."""

    is_admin: bool | None
    is_mfa_registered: bool | None
    is_mfa_capable: bool | None
    is_passwordless_capable: bool | None
    methods_registered: tuple[str, ...]
    last_updated: datetime | None = None
    default_method: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"isAdmin": self.is_admin, "isMfaRegistered": self.is_mfa_registered,
                "isMfaCapable": self.is_mfa_capable, "isPasswordlessCapable": self.is_passwordless_capable,
                "methodsRegistered": list(self.methods_registered), "defaultMethod": self.default_method,
                "lastUpdated": self.last_updated.isoformat() if self.last_updated else None}


@dataclass(frozen=True)
class Method:
    """One registered method from a per-user read."""

    id: str
    type: str  # the short Graph type: microsoftAuthenticator, phone, fido2, ...
    display: str = ""
    created: datetime | None = None
    usable: bool | None = None  # a Temporary Access Pass says whether it can be used now (isUsable)
    note: str = ""  # what the method's own properties add (TAP lifetime, phone type, passkey in Authenticator)

    def as_json(self) -> dict[str, Any]:
        fam = method_family(self.type)
        return {"id": self.id, "type": self.type, "family": fam, "display": self.display,
                "created": self.created.isoformat() if self.created else None, "usable": self.usable,
                "note": self.note}


@dataclass(frozen=True)
class UserFacts:
    id: str
    upn: str | None = None
    display_name: str | None = None
    user_type: str | None = None  # Member | Guest
    enabled: bool | None = None
    department: str | None = None
    licensed: bool | None = None
    deleted: bool = False  # listed by one read, gone by a later one (deleted during the snapshot)


@dataclass(frozen=True)
class Verdict:
    classification: str
    can_satisfy_mfa: bool | None
    is_admin: bool | None
    usable: tuple[str, ...]  # families that can answer an MFA prompt
    registered: tuple[str, ...]  # families listed, usable or not
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)


@cache
def _rank() -> dict[str, int]:
    # F.values walks every member's properties: worked out once, not twice for each of 100,000 users
    return {value: n for n, value in enumerate(F.values)}


def _order(families: Iterable[str]) -> tuple[str, ...]:
    return _ordered(frozenset(families))


@cache
def _ordered(families: frozenset[str]) -> tuple[str, ...]:
    # a tenant has a few dozen combinations of families: each is sorted once, not twice for each user
    rank = _rank()
    return tuple(sorted(families, key=lambda f: rank.get(f, 99)))


@cache
def _label(family: str) -> str:
    try:
        return F(family).label
    except ValueError:
        return family


_TIME = attrgetter("time")


def _when(moment: datetime | None) -> str:
    # isoformat, not strftime: the same text (Graph's times are UTC) in less than half the time, for most users
    return moment.isoformat(" ", "minutes")[:16] + " UTC" if moment else "an unknown time"


def classify(
    user: UserFacts,
    report: ReportRow | None,
    events: Sequence[Event] = (),
    methods: Sequence[Method] | None = None,
    *,
    methods_error: str | None = None,
) -> Verdict:
    """Decide one user's class, with the reasons in words and the evidence they rest on."""
    flags: list[str] = []
    reasons: list[str] = []
    if not user.upn:
        flags.append("no_upn")
    if (user.user_type or "").lower() == "guest":
        flags.append("guest")
    if user.deleted:
        flags.append("deleted_during_snapshot")
    if user.enabled is False:
        flags.append("disabled")
    if len(events) > 1:  # most users have none or one
        try:
            events = sorted(events, key=_TIME)
        except TypeError:  # an event without a time (never from Graph): last
            events = sorted(events, key=lambda e: (e.time is None, e.time or datetime.min))
    evidence: dict[str, Any] = {
        "report": report.as_json() if report else None,
        "methods": [m.as_json() for m in methods] if methods is not None else None,
        "methods_error": methods_error,
        "events": list(events),  # Event dataclasses: see Event
    }

    # what is listed: the methods read now if we have them (the report can lag a day), else the report
    unknown: list[str] = []
    tap_usable = False
    if methods is not None:
        listed = []
        for m in methods:
            fam = method_family(m.type)
            if fam == F.UNKNOWN:
                unknown.append(m.type or "?")
            if fam == F.TAP:
                if m.usable:
                    tap_usable = True
                    reasons.append(f"Temporary Access Pass usable now ({m.note}).")
                else:
                    reasons.append(f"Temporary Access Pass listed but not usable ({m.note or 'no detail'}).")
            if fam:
                listed.append(fam)
        source = "methods read from Graph"
    elif report is not None:
        listed = list(report_families(report.methods_registered))
        unknown = [name for name, fam in zip(report.methods_registered, listed, strict=True) if fam == F.UNKNOWN]
        source = "the registration report"
    else:
        if methods_error:
            reasons.append(f"No registration report row, and reading the methods failed: {methods_error}")
        else:
            reasons.append("No registration report row, and the methods were not read (outside the bounded set).")
        flags.append("not_evaluated")
        return Verdict(C.NOT_EVALUATED, None, None, (), (), tuple(reasons), tuple(flags), evidence)
    for name in unknown:
        flags.append(f"unknown_method:{name}")
    if unknown:
        reasons.append(f"Unknown method type(s) kept as listed, not counted: {', '.join(unknown)}.")
    registered = _order(listed)
    is_admin = report.is_admin if report else None
    if is_admin:
        flags.append("admin")

    # the audit trail: an Authenticator device stamped with no completed registration after it
    completions = [e for e in events if e.kind in COMPLETION_KINDS]
    last_completion = max((e.time for e in completions if e.time), default=None) if completions else None
    pending = None
    for e in events:
        if e.kind == "app_detail" and e.added_devices and e.had_devices == 0:
            if last_completion is None or (e.time is not None and e.time > last_completion):
                pending = e
    started_only = [e for e in events if e.kind == "started"
                    and not any(c.time and e.time and c.time >= e.time for c in completions)]
    for e in started_only:
        reasons.append(f"Started security info registration at {_when(e.time)} ({e.detail or 'no detail'}) "
                       "and never completed it.")
    for e in events:
        if e.kind == "cancelled":
            reasons.append(f"Cancelled a security info registration at {_when(e.time)}.")

    usable = {f for f in listed if f in MFA_FAMILIES}
    if tap_usable:
        usable.add(F.TAP)  # a usable pass answers MFA (built-in strength: temporaryAccessPassOneTime/MultiUse)
    if pending is not None and usable & AUTHENTICATOR_FAMILIES:
        usable -= AUTHENTICATOR_FAMILIES
        flags.append("unverified_authenticator")
        reasons.append(
            f"Microsoft Authenticator ({', '.join(pending.added_devices)}) was stamped on the account at "
            f"{_when(pending.time)} by {pending.actor or 'the MFA service'}, but no registration was completed "
            "after it (no 'User registered security info'): the method is listed but cannot answer a prompt.")
        if report is not None and report.is_mfa_capable:
            reasons.append("The registration report says MFA capable; the audit trail contradicts it.")
    rereg = _reregistration(events, completions) if events else None
    if rereg is not None:
        if methods is None:  # the report lists what was there when it was last updated
            lagging = report is not None and (report.last_updated is None or report.last_updated < rereg.time)
            stale = usable & REREGISTER_FAMILIES if lagging else set()
        elif rereg.kind == "reregistration_required":  # the older reset left the methods listed
            stale = {method_family(m.type) for m in methods if method_family(m.type) in REREGISTER_FAMILIES
                     and (m.created is None or m.created < rereg.time)}
            stale -= {method_family(m.type) for m in methods if m.created and m.created >= rereg.time}
        else:  # "Admin deleted security info": what is still listed was not deleted
            stale = set()
        usable -= stale
        what = ("required the user to register MFA again" if rereg.kind == "reregistration_required"
                else "deleted the user's security info")
        reasons.append(f"An administrator ({rereg.actor or 'unknown'}) {what} at {_when(rereg.time)} "
                       f"(audit: {rereg.activity}) and no registration was completed after it"
                       + (f": {families_label(_order(stale))} registered before it cannot answer MFA until the "
                          "user registers again." if stale else "."))
        if stale or not usable:
            flags.append("reregistration_required")
    usable_t = _order(usable)
    strong = usable & (STRONG_FAMILIES | {F.TAP})
    reported_registered = bool(report and report.is_mfa_registered)
    latest_event = max((e.time for e in events if e.time), default=None) if events else None
    report_stale = bool(report and report.last_updated and latest_event and latest_event > report.last_updated)

    if not usable:
        if is_admin:
            cls = C.ADMIN_NO_STRONG
            reasons.insert(0, "Administrator with no method that can answer an MFA prompt"
                           + (f" (only {', '.join(_label(f) for f in registered)})." if registered else "."))
        elif pending is not None:
            cls = C.NOT_USABLE
        elif rereg is not None:
            cls = C.NOT_REGISTERED
            reasons.insert(0, "Must register MFA again: no method that can answer a prompt is left since an "
                              "administrator required re-registration.")
        elif registered and set(registered) & MFA_FAMILIES or reported_registered:
            cls = C.NOT_CAPABLE_POLICY
            reasons.insert(0, "Registered, but no listed method can be used for MFA.")
        else:
            cls = C.NOT_REGISTERED
            reasons.insert(0, "No MFA method registered" + (
                f" (only {', '.join(_label(f) for f in registered)})." if registered else "."))
    elif is_admin and not strong:
        cls = C.ADMIN_NO_STRONG
        reasons.insert(0, f"Administrator whose only MFA method is {', '.join(_label(f) for f in usable_t)}: "
                          "phishable; register a strong method.")
    elif report is not None and report.is_mfa_registered and report.is_mfa_capable is False and pending is None \
            and not report_stale:
        # "not capable" weighs more than a methods list: the methods policy may disallow what is registered
        cls = C.NOT_CAPABLE_POLICY
        reasons.insert(0, f"Registered {', '.join(_label(f) for f in usable_t)}, but the authentication methods "
                          "policy does not allow them for MFA (report: isMfaCapable false"
                          + (", which outweighs the methods list)." if methods is not None else ")."))
    elif usable == {F.TAP}:
        cls = C.MFA_CAPABLE
        flags.append("tap_only")
        reasons.insert(0, "Only a Temporary Access Pass: can sign in and register a method while it lasts; "
                          "nothing once it expires.")
    elif not strong:
        cls = C.SMS_VOICE_ONLY
        reasons.insert(0, "Can answer MFA by SMS or voice call only.")
    elif usable & PASSWORDLESS_FAMILIES or (report is not None and report.is_passwordless_capable):
        cls = C.PASSWORDLESS
        reasons.insert(0, f"Passwordless capable ({', '.join(_label(f) for f in usable_t)}).")
    else:
        cls = C.MFA_CAPABLE
        reasons.insert(0, f"Can answer MFA with {', '.join(_label(f) for f in usable_t)}.")
    if methods is None and report is not None:
        reasons.append(f"Methods as listed by {source}"
                       + (f", last updated {_when(report.last_updated)}." if report.last_updated else "."))
    can = cls in CAN_SATISFY or (cls == C.ADMIN_NO_STRONG and bool(usable))
    return Verdict(cls, can, is_admin, usable_t, registered, tuple(reasons), tuple(flags), evidence)


def _reregistration(events: Sequence[Event], completions: Sequence[Event]) -> Event | None:
    """The latest re-registration trace (REREGISTER_KINDS) with no completed registration after it."""
    last = max((e for e in events if e.kind in REREGISTER_KINDS and e.time), key=lambda e: e.time, default=None)
    if last is None or any(c.time and c.time > last.time for c in completions):
        return None
    return last


def report_row(details: Any) -> ReportRow:
    """A :class:`portal.connectors.graph.RegistrationDetails` as the classification's input."""
    return ReportRow(
        is_admin=details.is_admin, is_mfa_registered=details.is_mfa_registered,
        is_mfa_capable=details.is_mfa_capable, is_passwordless_capable=details.is_passwordless_capable,
        methods_registered=tuple(details.methods_registered), last_updated=details.last_updated,
        default_method=details.user_preferred_method_for_secondary_authentication,
    )


def _method_note(kind: str, d: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Usability and a note from a method's own properties (Graph's resource types of each method)."""
    kind = kind.lower()
    if kind == "temporaryaccesspass":
        usable = d.get("isUsable")
        once = "one-time" if d.get("isUsableOnce") else "multi-use"
        life = d.get("lifetimeInMinutes")
        start = str(d.get("startDateTime") or "")[:16].replace("T", " ")
        text = f"{once} pass, {life} minutes from {start or 'its creation'}" if life else f"{once} pass"
        if usable is False:
            text += f"; not usable ({d.get('methodUsabilityReason') or 'expired or used'})"
        return (bool(usable) if usable is not None else None), text
    if kind == "phone":
        phone_type = d.get("phoneType") or ""
        text = {"mobile": "mobile (SMS and voice)", "alternatemobile": "alternate mobile (SMS and voice)",
                "office": "office phone (voice only)"}.get(phone_type.lower(), phone_type)
        return None, text
    if kind == "fido2":
        model = str(d.get("model") or "")
        return None, "passkey in Microsoft Authenticator" if "authenticator" in model.lower() else model
    if kind == "email":
        return None, "self-service password reset only, never a second factor"
    return None, ""


def method_from(auth_method: Any) -> Method:
    """A :class:`portal.connectors.graph.AuthMethod` as the classification's input."""
    usable, note = _method_note(auth_method.method or "", getattr(auth_method, "details", None) or {})
    return Method(id=auth_method.id, type=auth_method.method, display=auth_method.display_name or "",
                  created=auth_method.created, usable=usable, note=note)


def families_label(families: Iterable[str]) -> str:
    return ", ".join(_label(f) for f in families)

