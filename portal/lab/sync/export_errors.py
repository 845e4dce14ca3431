"""Export errors as the sync server records them, in its wording."""

from __future__ import annotations

from .model import ExportErrorRecord


class _ExportErrors:
    """Recording and clearing export errors (a mixin of the cycle)."""

    def clear_errors_of(self, anchor: str, dn: str) -> None:
        if self.staging:
            return
        dns = {e.get("DistinguishedName") for e in self.prior_errors if e.get("SourceAnchor") == anchor}
        dns.add(dn)
        for name in dns:
            if name:
                self.store.clear_export_errors(connector=self.aad_connector, distinguished_name=name)

    def record_errors(self) -> None:
        if self.staging:
            return  # nothing was exported, so nothing failed
        for plan in self.plans.values():
            if plan.error is None:
                if plan.exported:
                    self.clear_errors_of(plan.anchor, plan.dn)
                continue
            code, attribute, message = plan.error
            for error in self.prior_errors:
                if error.get("SourceAnchor") == plan.anchor and error.get("DistinguishedName") != plan.dn:
                    self.store.clear_export_errors(connector=self.aad_connector,
                                                   distinguished_name=error["DistinguishedName"])
            self.store.add_export_error(connector=self.aad_connector, distinguished_name=plan.dn, error_code=code,
                                        message=message, attribute=attribute, object_id=plan.oid,
                                        source_anchor=plan.anchor)
            self.result.export_errors.append(ExportErrorRecord(self.aad_connector, plan.dn, code, attribute, message))
        # AD connector errors are those of this cycle's writebacks only
        failed = {self.key(e.distinguished_name) for e in self.result.export_errors if e.connector == self.ad_connector}
        for error in self.prior_ad_errors:
            dn = error.get("DistinguishedName") or ""
            if self.key(dn) not in failed:
                self.store.clear_export_errors(connector=self.ad_connector, distinguished_name=dn)
        for error in self.result.export_errors:
            if error.connector == self.ad_connector:
                self.store.add_export_error(connector=self.ad_connector, distinguished_name=error.distinguished_name,
                                            error_code=error.error_code, message=error.message)


def _invalid_attribute(name: str) -> str:
    # The sync server's wording (field notes; blog posts quoting 0x8023134a DataValidationFailed).
    return (f"Unable to update this object in Azure Active Directory, because the attribute [{name}], is not valid. "
            "Update the value in your local directory services.")


def _duplicate_message(values: str) -> str:
    # The wording Entra ID returns for duplicate values (KB 2647098 is the article it points at).
    return ("Unable to update this object because the following attributes associated with this object have values "
            f"that may already be associated with another object in your local directory services: [{values}]. "
            "Correct or remove the duplicate values in your local directory. Please refer to "
            "http://support.microsoft.com/kb/2647098 for more information on identifying objects with duplicate "
            "attribute values.")
