"""Graph writes of cloud security groups and their members (Group.ReadWrite.All or GroupMember.ReadWrite.All).
A mixin of :class:`.client.EntraGraph` (it uses the connector's ``_run``); requests go through msgraph-sdk's
request builders like the rest of the connector."""

from __future__ import annotations

from typing import Any


class GroupWritesMixin:
    """Create a security group, add or remove one member by reference."""

    _run: Any
    settings: Any

    def create_security_group(self, *, display_name: str, mail_nickname: str, description: str = "") -> str:
        """Create a cloud-only security group (not mail-enabled); returns its object id."""
        from msgraph.generated.models.group import Group

        body = Group(display_name=display_name, mail_nickname=mail_nickname, mail_enabled=False,
                     security_enabled=True, group_types=[], description=description or None)
        created = self._run(f"create group {display_name}", lambda c: c.groups.post(body))
        return str(created.id)

    def add_group_member(self, group_id: str, member_id: str) -> None:
        from msgraph.generated.models.reference_create import ReferenceCreate

        from .client import _path_key

        ref = ReferenceCreate(odata_id=f"{self.settings.base}/directoryObjects/{_path_key(member_id)}")
        key = _path_key(group_id)
        self._run(f"add member {member_id} to group {group_id}",
                  lambda c: c.groups.by_group_id(key).members.ref.post(ref))

    def remove_group_member(self, group_id: str, member_id: str) -> None:
        from .client import _path_key

        key, member = _path_key(group_id), _path_key(member_id)
        self._run(f"remove member {member_id} from group {group_id}",
                  lambda c: c.groups.by_group_id(key).members.by_directory_object_id(member).ref.delete())
