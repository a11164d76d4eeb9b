"""The rules about what the Istio lowering drops or transforms (MC323, MC324, MC411, MC510,
MC511, MC609) are subject rules: after edits that change their findings — to the
service's ports (another file than the policies) or to the policies themselves — a compile
through one session reports exactly what a compile from scratch reports."""

from __future__ import annotations

from compiler.api import Compilation, Session, compile_tree
from compiler.kinds import load_checks
from compiler.lint.engine import subject_findings
from compiler.lint.registry import REGISTRY
from compiler.load.discover import PolicyTree
from compiler.model.mesh import ServiceKey
from tests.helpers import NOW

GAP_CODES = ("MC323", "MC324", "MC411", "MC510", "MC511", "MC609")

MIXED = "[{name: http, port: 9080, protocol: http}, {name: db, port: 5432, protocol: tcp}]"
TCP = "[{name: db, port: 5432, protocol: tcp}]"


def _doc(kind: str, name: str, spec: str) -> str:
    return (
        f"apiVersion: meshc/v1\nkind: {kind}\n"
        f"metadata: {{name: {name}, namespace: shop}}\nspec:\n{spec}"
    )


def _service(name: str, ports: str, calls: str = "") -> str:
    extra = f"  calls: [{calls}]\n" if calls else ""
    return _doc(
        "Service",
        name,
        f"  ports: {ports}\n"
        "  versions: {v1: {labels: {version: v1}}, v2: {labels: {version: v2}}}\n" + extra,
    )


POLICY = _doc(
    "AccessPolicy",
    "web",
    "  service: web\n  rules:\n"
    "  - from: [{service: client}]\n    to: {ports: [db], methods: [GET]}\n"
    "  - from: [{service: client}]\n"
    "    headers: {X-Role: [admin], x-role: [ops]}\n",
)
ROLLOUT = _doc(
    "Rollout",
    "web",
    "  service: web\n  stable: v1\n  split: {v1: 100}\n  mirror: {version: v2, percentage: 10}\n"
    "  match:\n  - headers: {End-User: {exact: a}, end-user: {exact: b}}\n"
    '    cookies: {a: {exact: "1"}, b: {exact: "1"}, c: {exact: "1"}, d: {exact: "1"}}\n'
    "    version: v2\n",
)
RESILIENCE = _doc("Resilience", "web", "  service: web\n  port: 5432\n  timeout: 2s\n")


def _files(web_ports: str) -> dict[str, bytes]:
    return {
        "web.yaml": _service("web", web_ports).encode(),
        "client.yaml": _service("client", MIXED, calls="web").encode(),
        "other.yaml": _service("other", MIXED).encode(),
        "policy.yaml": POLICY.encode(),
        "rollout.yaml": ROLLOUT.encode(),
        "resilience.yaml": RESILIENCE.encode(),
    }


def _rendered(compilation: Compilation) -> list[str]:
    return [
        f"{d.span.file}:{d.span.line}:{d.span.col}-{d.span.end_line}:{d.span.end_col} "
        f"{d.code} {d.message} | {d.hint}"
        for d in compilation.diagnostics
    ]


def _gap(compilation: Compilation) -> list[tuple[str, str, str]]:
    return [
        (d.code, d.span.file, d.message) for d in compilation.diagnostics if d.code in GAP_CODES
    ]


def test_the_gap_rules_are_subject_rules() -> None:
    load_checks()
    for code in GAP_CODES:
        assert REGISTRY[code].subject_check is not None, code


def test_incremental_equals_scratch_after_edits_that_change_the_gap_findings() -> None:
    files = _files(MIXED)
    session = Session()

    def both() -> Compilation:
        incremental = compile_tree(PolicyTree(files=dict(files)), now=NOW, session=session)
        scratch = compile_tree(PolicyTree(files=dict(files)), now=NOW)
        assert _rendered(incremental) == _rendered(scratch)
        return incremental

    first = _gap(both())
    assert {code for code, _, _ in first} == {"MC323", "MC324", "MC411", "MC511", "MC609"}
    assert (
        "MC609",
        "resilience.yaml",
        (
            "shop/web: timeout applies to HTTP routes only, but port 5432 is tcp; the lowering "
            "leaves it out"
        ),
    ) in first

    # an edit web neither is nor references: web's and client's findings are reused
    keys = [ServiceKey("shop", "web"), ServiceKey("shop", "client")]
    before = [session.engine.peek(subject_findings, key) for key in keys]
    files["other.yaml"] = b"# a comment\n" + files["other.yaml"]
    assert _gap(both()) == first
    after = [session.engine.peek(subject_findings, key) for key in keys]
    assert all(a is b for a, b in zip(before, after, strict=True))

    # web's ports become all tcp (web.yaml only): MC510 appears, MC411 and MC609 change
    files["web.yaml"] = _service("web", TCP).encode()
    all_tcp = _gap(both())
    assert {code for code, _, _ in all_tcp} == set(GAP_CODES)
    assert (
        "MC510",
        "rollout.yaml",
        (
            "shop/web: mirror on a service whose ports are all tcp; a TCP route cannot mirror, "
            "so the lowering leaves it out"
        ),
    ) in all_tcp
    assert [message[:60] for code, _, message in all_tcp if code == "MC411"] == [
        "rule 1 has HTTP conditions (methods) on tcp port 'db' (5432)",
        "rule 2 has HTTP conditions (headers) on shop/web, whose port",
    ]

    # the policy and rollout drop their clashes and cookies: MC324, MC323, MC511 go away
    files["policy.yaml"] = POLICY.replace("X-Role: [admin], ", "").encode()
    files["rollout.yaml"] = (
        ROLLOUT.replace("End-User: {exact: a}, ", "").replace(', d: {exact: "1"}', "").encode()
    )
    fixed = {code for code, _, _ in _gap(both())}
    assert fixed == {"MC411", "MC510", "MC609"}

    # back to http ports: the first findings but without the fixed ones
    files["web.yaml"] = _service("web", MIXED).encode()
    assert {code for code, _, _ in _gap(both())} == {"MC411", "MC609"}
