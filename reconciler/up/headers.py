"""The headers the local mesh's tools agree on (kept apart so `meshd call` imports no
HTTP server)."""

SERVED_BY = "x-meshd-served-by"
"""Set by every demo backend answer: `<service>/<version>/<index>` of the instance."""
DENIED_BY = "x-meshd-denied-by"
"""Optional, on an RBAC denial: Envoy's response code details
(`rbac_access_denied_matched_policy[<namespace>/<policy>/rule-<n>]`, or `[none]` when no
allow rule matched), e.g. added by the inbound listener's local reply config; without a
named rule `meshd call` names the destination's AccessPolicies."""
