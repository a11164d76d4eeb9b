"""MC208, MC305, MC306, MC401, MC402, MC410: the Mesh document."""

from __future__ import annotations

from datetime import UTC, datetime

from compiler.diagnostics import Severity
from tests.helpers import compile_files, findings
from tests.rules import only, where

RATINGS = """\
apiVersion: meshc/v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  ports: [{name: http, port: 9080, protocol: http}]
"""


def mesh(spec: str) -> str:
    return "apiVersion: meshc/v1\nkind: Mesh\nmetadata: {name: test-mesh}\nspec:\n" + spec


STRICT = mesh("  mtls: {mode: strict}\n")


def test_mc208_exception_for_undeclared_service() -> None:
    text = mesh(
        "  mtls:\n"
        "    exceptions:\n"
        "    - {service: bookinfo/rating, until: 2027-01-31, reason: legacy client}\n"
    )
    diag = only(compile_files({"mesh.yaml": text, "ratings.yaml": RATINGS}), "MC208")
    assert where(diag) == ("mesh.yaml", 7, 17)
    assert diag.severity is Severity.ERROR
    assert "mTLS exception: service bookinfo/rating is not declared" in diag.message
    assert "namespace/name" in diag.hint


def test_mc208_bare_name_resolves_in_the_mesh_namespace() -> None:
    # The Mesh has no namespace ("default"), so a bare name means default/ratings.
    text = mesh("  mtls:\n    exceptions: [{service: ratings, until: 2027-01-31, reason: x}]\n")
    diag = only(compile_files({"mesh.yaml": text, "ratings.yaml": RATINGS}), "MC208")
    assert "default/ratings" in diag.message


def test_mc208_silent_for_declared_service() -> None:
    text = mesh(
        "  mtls:\n    exceptions: [{service: bookinfo/ratings, until: 2027-01-31, reason: x}]\n"
    )
    assert findings(compile_files({"mesh.yaml": text, "ratings.yaml": RATINGS}), "MC208") == []


def test_mc305_second_mesh_document() -> None:
    other = STRICT.replace("test-mesh", "other-mesh")
    compilation = compile_files({"a/mesh.yaml": STRICT, "b/mesh.yaml": other, "r.yaml": RATINGS})
    diag = only(compilation, "MC305")
    assert where(diag) == ("b/mesh.yaml", 2, 7)
    assert "Mesh 'other-mesh': a second Mesh document" in diag.message
    assert "Mesh 'test-mesh' at a/mesh.yaml:1:1" in diag.message


def test_mc305_reports_each_extra_mesh() -> None:
    files = {f"m{i}.yaml": STRICT.replace("test-mesh", f"m{i}") for i in range(3)}
    found = findings(compile_files(files), "MC305")
    assert sorted(d.span.file for d in found) == ["m1.yaml", "m2.yaml"]


def test_mc305_silent_with_one_mesh() -> None:
    assert findings(compile_files({"mesh.yaml": STRICT, "r.yaml": RATINGS}), "MC305") == []


def test_mc306_no_mesh_document() -> None:
    compilation = compile_files({"ratings.yaml": RATINGS}, with_mesh=False)
    diag = only(compilation, "MC306")
    assert where(diag) == ("ratings.yaml", 1, 1)
    assert diag.severity is Severity.WARNING
    assert "no Mesh document, so defaults apply" in diag.message
    assert "strict mTLS, default deny" in diag.message


def test_mc306_silent_with_a_mesh_or_an_empty_root() -> None:
    assert findings(compile_files({"ratings.yaml": RATINGS}), "MC306") == []
    assert findings(compile_files({}, with_mesh=False), "MC306") == []


def test_mc401_permissive_without_until() -> None:
    text = mesh("  mtls:\n    mode: permissive\n")
    diag = only(compile_files({"mesh.yaml": text}), "MC401")
    assert where(diag) == ("mesh.yaml", 6, 11)
    assert "permissive has no 'until' date, so it is not lowered" in diag.message
    assert "the mesh stays strict" in diag.message


def test_mc401_permissive_past_until_states_the_evaluation_time() -> None:
    text = mesh("  mtls:\n    mode: permissive\n    until: 2026-11-01\n")
    compilation = compile_files({"mesh.yaml": text}, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    diag = only(compilation, "MC401")
    assert where(diag) == ("mesh.yaml", 7, 12)
    assert "ended on 2026-11-01" in diag.message
    assert "evaluated at 2026-11-25T12:00:00Z" in diag.message
    assert "remove" in diag.hint and "Git" in diag.hint


def test_mc401_silent_before_until_and_when_strict() -> None:
    text = mesh("  mtls:\n    mode: permissive\n    until: 2026-12-01\n")
    assert findings(compile_files({"mesh.yaml": text}), "MC401") == []
    # The same file a week after the date: the finding appears with no commit.
    later = compile_files({"mesh.yaml": text}, now=datetime(2026, 12, 8, tzinfo=UTC))
    assert "evaluated at 2026-12-08T00:00:00Z" in only(later, "MC401").message
    assert findings(compile_files({"mesh.yaml": STRICT}), "MC401") == []


def test_mc402_expired_exception() -> None:
    text = mesh(
        "  mtls:\n"
        "    exceptions:\n"
        "    - service: bookinfo/ratings\n"
        "      until: 2026-11-20T08:30:00Z\n"
        "      reason: legacy client\n"
    )
    diag = only(compile_files({"mesh.yaml": text, "ratings.yaml": RATINGS}), "MC402")
    assert where(diag) == ("mesh.yaml", 8, 14)
    assert "mTLS exception for bookinfo/ratings expired on 2026-11-20T08:30:00Z" in diag.message
    assert "evaluated at 2026-11-25T12:00:00Z" in diag.message
    assert "no longer lowered" in diag.message
    assert "remove the exception from Git" in diag.hint


def test_mc402_silent_for_live_exception() -> None:
    text = mesh(
        "  mtls:\n    exceptions: [{service: bookinfo/ratings, until: 2026-11-26, reason: x}]\n"
    )
    assert findings(compile_files({"mesh.yaml": text, "ratings.yaml": RATINGS}), "MC402") == []


def test_mc410_default_allow() -> None:
    text = mesh("  defaultAction: allow\n")
    diag = only(compile_files({"mesh.yaml": text}), "MC410")
    assert where(diag) == ("mesh.yaml", 5, 18)
    assert diag.severity is Severity.WARNING
    assert "zero trust is off" in diag.message
    assert "defaultAction: deny" in diag.hint


def test_mc410_silent_for_default_deny() -> None:
    assert findings(compile_files({"mesh.yaml": mesh("  defaultAction: deny\n")}), "MC410") == []
