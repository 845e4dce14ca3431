"""Graph authentication methods: ``/users/{id}/authentication/methods`` and the premium-licence check
the reports share."""

from __future__ import annotations

import re

from .api import ApiRequest, ApiResponse
from .errors import graph_error


class GraphAuthMethodsMixin:
    """Authentication-method handlers; part of ``LabCloud``."""

    def _auth_methods(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
        user = self._object_or_404(req, match.group(1), "user")
        methods = self.store.list_auth_methods(user_id=user["id"])
        return ApiResponse(200, {"@odata.context": self._context(req, f"users('{match.group(1)}')/authentication/"
                                                                      "methods"), "value": methods})

    def _auth_method(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
        user = self._object_or_404(req, match.group(1), "user")
        for method in self.store.list_auth_methods(user_id=user["id"]):
            if method["id"] == match.group(2):
                return ApiResponse(200, {"@odata.context": self._context(
                    req, f"users('{match.group(1)}')/authentication/methods/$entity"), **method})
        raise graph_error(404, "itemNotFound", f"The requested authentication method '{match.group(2)}' was not found.",
                          req)

    def _premium(self, req: ApiRequest) -> None:
        if not self.store.settings().premium_licence:
            # Graph's answer without Entra ID P1/P2 (microsoftgraph/microsoft-graph-docs-contrib#8777, #3808).
            raise graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                              "Neither tenant is B2C or tenant doesn't have premium license", req)
