"""The Git side of the CA: read `Mesh.spec.ca` from a file and propose its next edit.

Reading goes through the compiler's own loader (same validation and error locations as
`meshc lint`). Editing uses ruamel's round-trip loader so the user's comments and layout
survive `meshd ca rotate start|advance|mesh-edit --write`.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.api import build_file
from compiler.kinds.mesh.anchors import anchor_fingerprints, normalize_fingerprint, parse_anchor_pem
from compiler.kinds.mesh.model import MeshSpec
from reconciler.ca.errors import CAError
from reconciler.ca.fsutil import atomic_write
from reconciler.ca.store import KeyStore


@dataclass(frozen=True, slots=True)
class MeshFile:
    path: Path
    text: str
    spec: MeshSpec


def load_mesh(path: Path) -> MeshFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CAError(f"cannot read the Mesh file: {exc.strerror}", path=path) from None
    result = build_file(str(path), raw)
    errors = list(result.problems)
    if errors:
        first = errors[0]
        raise CAError(
            f"{first.span.line}:{first.span.col}: {first.message}",
            path=path,
            remedy="fix it (`meshc lint` shows every problem)",
        )
    meshes = [i for i in result.intents if i.doc.kind == "Mesh"]
    if len(meshes) != 1:
        raise CAError(
            f"expected exactly one Mesh document, found {len(meshes)}",
            path=path,
            remedy="point --mesh at the file holding the Mesh document",
        )
    return MeshFile(path, raw.decode("utf-8"), meshes[0].model.spec)


def check_mesh_against_store(mesh: MeshFile, store: KeyStore) -> None:
    """Every anchor the Mesh trusts must be a root this key store knows."""
    spec = mesh.spec
    if spec.trust_domain != store.state.trust_domain:
        raise CAError(
            f"Mesh trust domain {spec.trust_domain!r} differs from the key store's "
            f"({store.state.trust_domain!r})",
            path=mesh.path,
            remedy="use the store made for this mesh, or fix spec.trustDomain",
        )
    if spec.ca is None:
        return
    known = {record.fingerprint for record in store.state.roots}
    for index, (name, fp) in enumerate(anchor_fingerprints(spec.ca).items()):
        if fp is None:
            raise CAError(
                f"spec.ca.anchors[{index}] ({name!r}): pem is not one certificate",
                path=mesh.path,
                remedy="run `meshc lint` for details",
            )
        if fp not in known:
            raise CAError(
                f"spec.ca.anchors[{index}] ({name!r}, {fp}) is not a root this key "
                f"store knows ({store.path})",
                path=mesh.path,
                remedy="use the --state directory that holds this root, or remove "
                "the anchor; `meshd ca status` lists the store's roots",
            )


def git_trusted(mesh: MeshFile) -> frozenset[str]:
    """The root fingerprints the Mesh document trusts (what meshc renders into proxies)."""
    if mesh.spec.ca is None:
        return frozenset()
    return frozenset(fp for fp in anchor_fingerprints(mesh.spec.ca).values() if fp is not None)


def drift(mesh: MeshFile, store: KeyStore) -> list[str]:
    """How Git's trust settings differ from the key store's (empty = in step)."""
    ca = mesh.spec.ca
    if ca is None:
        return ["the Mesh has no spec.ca; `meshd ca rotate mesh-edit --mesh FILE --write` adds it"]
    prints = anchor_fingerprints(ca)
    names = {r.fingerprint: r.name for r in store.state.roots}
    trusted = {store.state.root(n).fingerprint for n in store.state.trusted}
    problems = []
    git_trusted = {fp for fp in prints.values() if fp is not None}
    for fp in sorted(trusted - git_trusted):
        problems.append(f"Git does not yet trust root {names[fp]} ({fp}), the store's bundle does")
    for fp in sorted(git_trusted - trusted):
        problems.append(f"Git still trusts root {names.get(fp, '?')} ({fp}); the store dropped it")
    issuer_fp = store.state.root(store.state.issuer).fingerprint
    if prints.get(ca.issuer) != issuer_fp:
        problems.append(
            f"Git's issuer {ca.issuer!r} is not the store's issuer {store.state.issuer}"
        )
    return problems


def _anchor_fp(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("fingerprint"), str):
        return normalize_fingerprint(item["fingerprint"])
    if isinstance(item.get("pem"), str):
        parsed = parse_anchor_pem(item["pem"])
        if parsed.error is None:
            from compiler.kinds.mesh.anchors import fingerprint

            return fingerprint(parsed.certificates[0])
    return None


def proposed_text(mesh: MeshFile, store: KeyStore) -> str:
    """The Mesh file with `spec.ca` matching the store (anchors = the bundle, issuer)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    docs = list(yaml.load_all(mesh.text))
    target = next(d for d in docs if isinstance(d, dict) and d.get("kind") == "Mesh")
    spec = target.get("spec")
    if not isinstance(spec, CommentedMap) or not spec:
        spec = CommentedMap(spec or {})
        target["spec"] = spec
    spec.fa.set_block_style()
    ca = spec.get("ca")
    if not isinstance(ca, CommentedMap):
        ca = CommentedMap()
        spec["ca"] = ca
    ca.fa.set_block_style()
    anchors = ca.get("anchors")
    if not isinstance(anchors, CommentedSeq):
        anchors = CommentedSeq()
        ca.insert(0, "anchors", anchors)
    state = store.state
    wanted = {state.root(n).fingerprint: n for n in state.trusted}
    names: dict[str, str] = {}
    for index in reversed(range(len(anchors))):
        fp = _anchor_fp(anchors[index])
        if fp not in wanted:
            del anchors[index]
        elif fp is not None:
            names[fp] = str(anchors[index].get("name"))
    for fp, root_name in wanted.items():
        if fp not in names:
            entry = CommentedMap([("name", root_name), ("fingerprint", fp)])
            anchors.append(entry)
            names[fp] = root_name
    ca["issuer"] = names[state.root(state.issuer).fingerprint]
    stream = io.StringIO()
    explicit = mesh.text.lstrip().startswith("---")
    yaml.explicit_start = explicit or len(docs) > 1
    yaml.dump_all(docs, stream)
    text = stream.getvalue()
    if not explicit and text.startswith("---\n"):
        text = text[4:]
    return text


def mesh_diff(mesh: MeshFile, new_text: str) -> str:
    name = mesh.path.as_posix()
    lines = difflib.unified_diff(
        mesh.text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(lines)


def write_mesh(mesh: MeshFile, new_text: str) -> None:
    mode = mesh.path.stat().st_mode & 0o777
    atomic_write(mesh.path, new_text.encode("utf-8"), mode=mode)


def ca_snippet(store: KeyStore) -> str:
    """The `spec.ca` block to put in the Mesh (when no Mesh file is given)."""
    state = store.state
    lines = ["ca:", "  anchors:"]
    for name in state.trusted:
        lines.append(f"  - name: {name}")
        lines.append(f'    fingerprint: "{state.root(name).fingerprint}"')
    lines.append(f"  issuer: {state.issuer}")
    return "\n".join(lines) + "\n"
