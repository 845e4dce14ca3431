"""Graph's object shapes the lab answers with: default and known properties per kind, OData type
names, and the fixed error texts for synced and Exchange-managed objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Graph's list of default properties for users (learn.microsoft.com, "List users": without
# $select only these come back).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
                "preferredLanguage", "surname", "userPrincipalName", "id")
USER_PROPERTIES = frozenset(USER_DEFAULT) | {
    "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "authorizationInfo", "city", "companyName",
    "consentProvidedForMinor", "country", "createdDateTime", "creationType", "deletedDateTime", "department",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData", "employeeType",
    "externalUserState", "externalUserStateChangeDateTime", "faxNumber", "identities", "imAddresses",
    "isResourceAccount", "lastPasswordChangeDateTime", "legalAgeGroupClassification", "licenseAssignmentStates",
    "mailNickname", "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes",
    "onPremisesImmutableId", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName", "otherMails", "passwordPolicies", "postalCode", "preferredDataLocation",
    "provisionedPlans", "proxyAddresses", "securityIdentifier", "showInAddressList", "signInSessionsValidFromDateTime",
    "state", "streetAddress", "usageLocation", "userType",
}
# Groups come back with (nearly) all their properties by default.
GROUP_DEFAULT = (
    "id", "deletedDateTime", "classification", "createdDateTime", "creationOptions", "description", "displayName",
    "expirationDateTime", "groupTypes", "isAssignableToRole", "mail", "mailEnabled", "mailNickname",
    "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName", "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName", "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "preferredDataLocation", "preferredLanguage", "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions",
    "resourceProvisioningOptions", "securityEnabled", "securityIdentifier", "theme", "visibility",
    "onPremisesProvisioningErrors", "serviceProvisioningErrors",
)
GROUP_PROPERTIES = frozenset(GROUP_DEFAULT) | {"onPremisesGroupType"}
# Only beta has these (lab-cloud.md: group writeback configuration is beta).
GROUP_BETA_ONLY = frozenset({"writebackConfiguration"})
CONTACT_DEFAULT = ("id", "addresses", "companyName", "department", "displayName", "givenName", "jobTitle", "mail",
                   "mailNickname", "onPremisesLastSyncDateTime", "onPremisesSyncEnabled", "phones", "proxyAddresses",
                   "surname", "onPremisesProvisioningErrors", "serviceProvisioningErrors")
CONTACT_PROPERTIES = frozenset(CONTACT_DEFAULT) | {"createdDateTime", "deletedDateTime"}
_COLLECTIONS = frozenset({
    "businessPhones", "proxyAddresses", "groupTypes", "otherMails", "imAddresses", "identities", "assignedLicenses",
    "assignedPlans", "provisionedPlans", "onPremisesProvisioningErrors", "serviceProvisioningErrors",
    "resourceBehaviorOptions", "resourceProvisioningOptions", "creationOptions", "addresses", "phones",
    "licenseAssignmentStates",
})
_ODATA_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group",
                "contact": "#microsoft.graph.orgContact"}
_CASTS = {"microsoft.graph.user": "user", "microsoft.graph.group": "group", "microsoft.graph.orgcontact": "contact"}
_TYPE_NAMES = {"user": "microsoft.graph.user", "group": "microsoft.graph.group",
               "contact": "microsoft.graph.orgContact"}

ON_PREM_PROPERTIES_ERROR = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects "
    "currently undergoing migration."
)
# Graph refuses to change distribution lists and mail-enabled security groups (only Exchange can).
DL_UPDATE_ERROR = "Cannot Update a mail-enabled security groups and or distribution list."
WRITEBACK_GROUP_TYPES = ("universalDistributionGroup", "universalSecurityGroup", "universalMailEnabledSecurityGroup")


def _is_exchange_managed(group: Mapping[str, Any]) -> bool:
    """Distribution lists and mail-enabled security groups: only Exchange may change them."""
    return bool(group.get("mailEnabled")) and "Unified" not in (group.get("groupTypes") or [])
