"""The headers the local mesh's tools agree on (kept apart so `meshd call` imports no
HTTP server)."""

SERVED_BY = "x-meshd-served-by"
"""Set by every demo backend answer: `<service>/<version>/<index>` of the instance."""
DENIED_BY = "x-meshd-denied-by"
"""Optional, on an RBAC denial: the matched policy (Envoy's
`rbac_access_denied_matched_policy[...]` detail); without it `meshd call` names the
destination's AccessPolicies."""
