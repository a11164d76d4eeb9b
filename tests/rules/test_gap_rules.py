"""Rules for what the Istio lowering drops or transforms (MC323, MC324, MC411, MC510, MC511,
MC609) and MC603 counting Istio's default retries: each fires on the mistake it names, at
the offending node (file:line:col), and stays silent on the corrected input."""

from __future__ import annotations

import textwrap

from compiler.api import Compilation
from compiler.kinds.rollout.model import MatchRule, StringMatch
from compiler.lower import lower
from compiler.lower.istio.virtual_service import cookie_regex, match_conditions
from tests.helpers import compile_files, findings
from tests.rules import locate, only, where


def doc(kind: str, name: str, spec: str, *, namespace: str = "shop") -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return (
        f"apiVersion: meshc/v1\nkind: {kind}\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n"
    )


HTTP_PORTS = "[{name: http, port: 9080, protocol: http}]"


def service(name: str, *, ports: str = HTTP_PORTS, calls: str = "") -> str:
    extra = f"calls: [{calls}]\n" if calls else ""
    return doc(
        "Service",
        name,
        f"ports: {ports}\nversions: {{v1: {{labels: {{version: v1}}}}, "
        f"v2: {{labels: {{version: v2}}}}}}\n{extra}",
    )


TCP_PORTS = "[{name: db, port: 5432, protocol: tcp}]"
MIXED_PORTS = "[{name: http, port: 9080, protocol: http}, {name: db, port: 5432, protocol: tcp}]"


def web_rollout(spec: str) -> str:
    """A Rollout of shop/web (stable v1) whose spec goes on with `spec`."""
    return doc("Rollout", "web", "service: web\nstable: v1\n" + textwrap.dedent(spec).strip("\n"))


def lint_web(files: dict[str, str], *, ports: str = HTTP_PORTS) -> Compilation:
    """Compile `files` next to svc.yaml declaring shop/web with `ports`."""
    return compile_files({"svc.yaml": service("web", ports=ports), **files})


MIRRORING = web_rollout("split: {v1: 100}\nmirror: {version: v2, percentage: 10}")


# --- MC603: Istio's default retry policy counts -------------------------------------------

RETRYING_DB = doc(
    "Resilience",
    "db",
    "service: db\ntimeout: 3s\n"
    "retries: {attempts: 3, perTryTimeout: 500ms, retryOn: [connect-failure]}",
)


def test_mc603_counts_istio_default_on_a_hop_without_retries() -> None:
    files = {
        "svc.yaml": service("frontend", calls="api")
        + "---\n"
        + service("api", calls="db")
        + "---\n"
        + service("db"),
        "db.yaml": RETRYING_DB,
    }
    diag = only(compile_files(files), "MC603")
    assert where(diag) == ("db.yaml", *locate(RETRYING_DB, "3, perTryTimeout"))
    assert (
        "retry amplification frontend → api → db: 3 (Istio default: 2 retries) × 4 = 12 "
        "attempts exceed the mesh retry budget of 10" in diag.message
    )


def test_mc603_silent_when_the_middle_hop_turns_retries_off_or_is_tcp() -> None:
    base = {
        "svc.yaml": service("frontend", calls="api") + "---\n" + service("db"),
        "db.yaml": RETRYING_DB,
    }
    off = doc("Resilience", "api", "service: api\nretries: {attempts: 0}")
    assert (
        findings(
            compile_files({**base, "api.yaml": service("api", calls="db"), "off.yaml": off}),
            "MC603",
        )
        == []
    )
    tcp_api = service("api", ports=TCP_PORTS, calls="db")
    assert findings(compile_files({**base, "api.yaml": tcp_api}), "MC603") == []


def test_mc603_default_only_chain_is_reported_at_the_calls_entry() -> None:
    text = (
        service("a", calls="b")
        + "---\n"
        + service("b", calls="c")
        + "---\n"
        + service("c", calls="d")
        + "---\n"
        + service("d")
    )
    diag = only(compile_files({"svc.yaml": text}), "MC603")
    assert where(diag) == ("svc.yaml", *locate(text, "d]"))
    assert (
        "a → b → c → d: 3 (Istio default: 2 retries) × 3 (Istio default: 2 retries) × "
        "3 (Istio default: 2 retries) = 27 attempts" in diag.message
    )


# --- MC323: A/B header names that clash once lowercased ---------------------------------


def test_mc323_header_names_differing_in_case() -> None:
    rollout = web_rollout(
        """
        match:
        - headers: {End-User: {exact: jason}, end-user: {exact: maria}}
          version: v2
        """
    )
    diag = only(lint_web({"r.yaml": rollout}), "MC323")
    assert where(diag) == ("r.yaml", *locate(rollout, "end-user"))
    assert "match[0] headers 'End-User' and 'end-user' are one header" in diag.message
    assert "only one of the two conditions reaches the VirtualService" in diag.message


def test_mc323_cookie_header_next_to_cookie_conditions() -> None:
    rollout = web_rollout(
        """
        match:
        - headers: {Cookie: {regex: ".*beta.*"}}
          cookies: {group: {exact: beta}}
          version: v2
        """
    )
    diag = only(lint_web({"r.yaml": rollout}), "MC323")
    assert where(diag) == ("r.yaml", *locate(rollout, "Cookie"))
    assert "'Cookie' header condition and cookie conditions" in diag.message
    assert "move the condition under cookies:" in diag.hint


def test_mc323_silent_on_distinct_headers() -> None:
    rollout = web_rollout(
        """
        match:
        - headers: {end-user: {exact: jason}, x-group: {exact: beta}}
          cookies: {group: {exact: beta}}
          version: v2
        """
    )
    compilation = lint_web({"r.yaml": rollout})
    assert findings(compilation, "MC323") == []


# --- MC324: AccessPolicy header names that clash -----------------------------------------


def policy(rule: str) -> str:
    return doc("AccessPolicy", "web", "service: web\nrules:\n" + textwrap.dedent(rule).strip("\n"))


def test_mc324_policy_header_names_differing_in_case() -> None:
    text = policy(
        """
        - from: [{service: client}]
          headers: {X-Role: [admin, ops], x-role: [ops]}
        """
    )
    files = {"svc.yaml": service("web") + "---\n" + service("client", calls="web"), "p.yaml": text}
    diag = only(compile_files(files), "MC324")
    assert where(diag) == ("p.yaml", *locate(text, "x-role"))
    assert "rule 1: headers 'X-Role' and 'x-role' are one header" in diag.message
    assert "only values in both lists pass (ops)" in diag.message


def test_mc324_disjoint_values_never_match() -> None:
    text = policy(
        """
        - from: [{service: client}]
          headers: {x-role: [admin], X-ROLE: [ops]}
        """
    )
    files = {"svc.yaml": service("web") + "---\n" + service("client", calls="web"), "p.yaml": text}
    diag = only(compile_files(files), "MC324")
    assert where(diag) == ("p.yaml", *locate(text, "X-ROLE"))
    assert "headers 'x-role' and 'X-ROLE'" in diag.message
    assert "(none: the rule never matches)" in diag.message
    assert "merge them into one entry" in diag.hint


def test_mc324_silent_on_one_entry_per_header() -> None:
    text = policy(
        """
        - from: [{service: client}]
          headers: {x-role: [admin, ops], x-tenant: [a]}
        """
    )
    files = {"svc.yaml": service("web") + "---\n" + service("client", calls="web"), "p.yaml": text}
    assert findings(compile_files(files), "MC324") == []


# --- MC411: HTTP conditions on tcp ports ---------------------------------------------------


def test_mc411_allow_with_methods_on_a_named_tcp_port() -> None:
    text = policy(
        """
        - from: [{service: client}]
          to: {ports: [http, db], methods: [GET]}
        """
    )
    files = {
        "svc.yaml": service("web", ports=MIXED_PORTS) + "---\n" + service("client", calls="web"),
        "p.yaml": text,
    }
    diag = only(compile_files(files), "MC411")
    assert where(diag) == ("p.yaml", *locate(text, "db]"))
    assert "rule 1 has HTTP conditions (methods) on tcp port 'db' (5432)" in diag.message
    assert "Istio ignores this allow rule on a TCP port" in diag.message


def test_mc411_deny_without_ports_on_an_all_tcp_service() -> None:
    text = policy(
        """
        - from: [{service: client}]
          to: {paths: ["/admin*"]}
          headers: {x-debug: ["1"]}
          action: deny
        """
    )
    files = {
        "svc.yaml": service("web", ports=TCP_PORTS) + "---\n" + service("client", calls="web"),
        "p.yaml": text,
    }
    diag = only(compile_files(files), "MC411")
    assert where(diag) == ("p.yaml", *locate(text, "paths"))
    assert "(paths, headers) on shop/web, whose ports are all tcp" in diag.message
    assert "this deny rule denies every connection from its sources" in diag.message


def test_mc411_silent_on_http_ports_and_plain_tcp_rules() -> None:
    text = policy(
        """
        - from: [{service: client}]
          to: {ports: [http], methods: [GET]}
        - from: [{service: client}]
          to: {ports: [db]}
        """
    )
    files = {
        "svc.yaml": service("web", ports=MIXED_PORTS) + "---\n" + service("client", calls="web"),
        "p.yaml": text,
    }
    assert findings(compile_files(files), "MC411") == []


# --- MC510 / MC609: HTTP-only traffic settings on tcp services ------------------------------


def test_mc510_mirror_on_an_all_tcp_service() -> None:
    rollout = MIRRORING
    diag = only(lint_web({"r.yaml": rollout}, ports=TCP_PORTS), "MC510")
    assert where(diag) == ("r.yaml", *locate(rollout, "mirror"))
    assert "shop/web: mirror on a service whose ports are all tcp" in diag.message
    assert "the lowering leaves it out" in diag.message


def test_mc510_silent_when_a_port_carries_http() -> None:
    rollout = MIRRORING
    compilation = lint_web({"r.yaml": rollout}, ports=MIXED_PORTS)
    assert findings(compilation, "MC510") == []


def test_mc609_timeout_and_retries_on_an_all_tcp_service() -> None:
    text = doc("Resilience", "web", "service: web\ntimeout: 2s\nretries: {attempts: 2}")
    compilation = lint_web({"res.yaml": text}, ports=TCP_PORTS)
    found = findings(compilation, "MC609")
    assert [where(d) for d in found] == [
        ("res.yaml", *locate(text, "timeout")),
        ("res.yaml", *locate(text, "retries")),
    ]
    assert "shop/web: timeout applies to HTTP routes only, but its ports are all tcp" in (
        found[0].message
    )
    assert "retries applies to HTTP routes only" in found[1].message


def test_mc609_port_scoped_to_a_tcp_port_of_a_mixed_service() -> None:
    text = doc("Resilience", "web", "service: web\nport: 5432\ntimeout: 2s")
    compilation = lint_web({"res.yaml": text}, ports=MIXED_PORTS)
    diag = only(compilation, "MC609")
    assert where(diag) == ("res.yaml", *locate(text, "timeout"))
    assert "but port 5432 is tcp; the lowering leaves it out" in diag.message


def test_mc609_silent_on_http_ports_and_tcp_safe_settings() -> None:
    http = doc("Resilience", "web", "service: web\nport: 9080\ntimeout: 2s")
    compilation = lint_web({"res.yaml": http}, ports=MIXED_PORTS)
    assert findings(compilation, "MC609") == []
    breaker = doc(
        "Resilience",
        "web",
        "service: web\nretries: {attempts: 0}\ncircuitBreaker: {maxConnections: 10}",
    )
    compilation = lint_web({"res.yaml": breaker}, ports=TCP_PORTS)
    assert findings(compilation, "MC609") == []


# --- MC511: too many cookies in one match ----------------------------------------------------


def cookie_rollout(count: int) -> str:
    cookies = ", ".join(f"c{i}: {{exact: '1'}}" for i in range(count))
    return web_rollout(f"match:\n- cookies: {{{cookies}}}\n  version: v2")


def test_mc511_four_cookies() -> None:
    rollout = cookie_rollout(4)
    diag = only(lint_web({"r.yaml": rollout}), "MC511")
    assert where(diag) == ("r.yaml", *locate(rollout, "cookies"))
    assert "match[0] names 4 cookies" in diag.message
    assert "24 alternatives" in diag.message


def test_mc511_silent_with_three_cookies() -> None:
    compilation = lint_web({"r.yaml": cookie_rollout(3)})
    assert findings(compilation, "MC511") == []


# --- the lowering does what the messages say ---------------------------------------------


def test_lowering_collapses_clashing_header_names_and_grows_cookie_regexes() -> None:
    rule = MatchRule(
        headers={"End-User": StringMatch(exact="jason"), "end-user": StringMatch(exact="maria")},
        version="v2",
    )
    assert list(match_conditions(rule)["headers"]) == ["end-user"]
    cookies = {f"c{i}": StringMatch(exact="1") for i in range(4)}
    assert cookie_regex(cookies).count("(?:^|.*;\\s*)") == 24


def test_lowering_leaves_http_settings_out_on_tcp_services() -> None:
    rollout = MIRRORING
    resilience = doc("Resilience", "web", "service: web\ntimeout: 2s\nretries: {attempts: 2}")
    compilation = lint_web({"r.yaml": rollout, "res.yaml": resilience}, ports=TCP_PORTS)
    assert {d.code for d in compilation.blocking()} == {"MC510", "MC609"}
    services = [obj for key, obj in lower(compilation) if obj["kind"] == "VirtualService"]
    assert len(services) == 1 and "tcp" in services[0]["spec"]
    emitted = str(services[0]["spec"])
    assert "mirror" not in emitted and "timeout" not in emitted and "retries" not in emitted
