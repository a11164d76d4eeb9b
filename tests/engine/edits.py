"""Random edits of a policy tree, drawn from the kinds' JSON Schemas.

`SchemaEditor.edit(files, rng)` picks a file, a document in it and a path into the
document that its kind's schema (`schemas/<kind>.schema.json`) allows, and writes a new
value generated from that schema there, or removes an optional key, a list item or the
whole document. Strings a schema leaves open are drawn from the names the tree already
uses (services, namespaces, versions, ports) often enough that edits cross-reference
other services the way real edits do; no list of fields is kept here.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.helpers import REPO

SCHEMAS = {
    "Mesh": "mesh",
    "Service": "service",
    "AccessPolicy": "access-policy",
    "Rollout": "rollout",
    "Resilience": "resilience",
}
DURATIONS = ("100ms", "250ms", "1s", "2s", "30s", "1m", "1h", "0s")
WORDS = ("a", "x-user", "/api/*", "*/admin", "/", "GET", "end-user", "jason", "5xx", "reset")


def load_schema(kind: str) -> dict[str, Any]:
    path = REPO / "schemas" / f"{SCHEMAS[kind]}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@dataclass
class Names:
    """What the tree already names, for schema strings the schema leaves open."""

    services: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=lambda: ["v1", "v2", "v3"])
    ports: list[int | str] = field(default_factory=lambda: [8080, 9080, "http", "grpc"])

    @classmethod
    def of(cls, documents: list[dict[str, Any]]) -> Names:
        names = cls()
        for doc in documents:
            meta = doc.get("metadata") or {}
            if doc.get("kind") == "Service" and isinstance(meta, dict):
                name, namespace = meta.get("name"), meta.get("namespace", "default")
                if isinstance(name, str) and isinstance(namespace, str):
                    names.services.append(f"{namespace}/{name}")
                    names.namespaces.append(namespace)
        names.namespaces = sorted(set(names.namespaces)) or ["default"]
        return names


class SchemaEditor:
    def __init__(self) -> None:
        self.schemas = {kind: load_schema(kind) for kind in SCHEMAS}
        self.yaml = YAML(typ="safe", pure=True)
        self.yaml.default_flow_style = False

    # -- the tree ----------------------------------------------------------------------

    def edit(self, files: dict[str, bytes], rng: random.Random) -> str:
        """Edit `files` in place; returns a description of the edit (for failures)."""
        loaded = {name: self._documents(raw) for name, raw in sorted(files.items())}
        names = Names.of([doc for docs in loaded.values() for doc in docs])
        candidates = [name for name, docs in loaded.items() if docs]
        name = rng.choice(candidates)
        documents = loaded[name]
        index = rng.randrange(len(documents))
        doc = documents[index]
        kind = doc.get("kind")
        roll = rng.random()
        if roll < 0.03 and kind != "Mesh":
            del documents[index]
            what = f"{name}: removed document {index} ({kind})"
        elif roll < 0.06 and kind in ("AccessPolicy", "Resilience", "Rollout"):
            copy = json.loads(json.dumps(doc))
            copy["metadata"]["name"] = f"{copy['metadata']['name']}-copy"
            documents.append(copy)
            what = f"{name}: duplicated document {index} ({kind})"
        else:
            schema = self.schemas.get(str(kind))
            if schema is None:
                return f"{name}: document {index} has no schema; left alone"
            path = self._mutate(doc, schema, schema, rng, names, ("",))
            what = f"{name}: {kind} {'.'.join(map(str, path[1:]))}"
        files[name] = self._dump(documents)
        return what

    def _documents(self, raw: bytes) -> list[dict[str, Any]]:
        try:
            found = [d for d in self.yaml.load_all(raw.decode()) if isinstance(d, dict)]
        except Exception:
            return []
        return found

    def _dump(self, documents: list[dict[str, Any]]) -> bytes:
        out = io.StringIO()
        self.yaml.dump_all(documents, out)
        return out.getvalue().encode()

    # -- schema walking ----------------------------------------------------------------

    def _resolve(self, schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            schema = {**root["$defs"][target], **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _mutate(
        self,
        node: Any,
        schema: dict[str, Any],
        root: dict[str, Any],
        rng: random.Random,
        names: Names,
        path: tuple[str | int, ...],
    ) -> tuple[str | int, ...]:
        """Walk down `node` along `schema` and change something; returns the path."""
        schema = self._resolve(schema, root)
        if "anyOf" in schema:
            arms = [self._resolve(a, root) for a in schema["anyOf"]]
            fitting = [a for a in arms if _fits(node, a)]
            schema = rng.choice(fitting or arms)
        if isinstance(node, dict) and schema.get("type") == "object":
            properties = schema.get("properties", {})
            keys = list(properties) or list(node)
            if not keys:
                return path
            key = rng.choice(keys)
            if key in ("apiVersion", "kind"):
                key = "spec" if "spec" in properties else key
            sub = properties.get(key) or schema.get("additionalProperties") or {}
            required = set(schema.get("required", ()))
            if key in node and key not in required and rng.random() < 0.12:
                del node[key]
                return (*path, key, "(removed)")
            if key in node and isinstance(node[key], dict | list) and rng.random() < 0.8:
                return self._mutate(node[key], sub, root, rng, names, (*path, key))
            node[key] = self.value(sub, root, rng, names, key)
            return (*path, key)
        if isinstance(node, list) and schema.get("type") == "array":
            item = schema.get("items", {})
            if node and rng.random() < 0.7:
                index = rng.randrange(len(node))
                if rng.random() < 0.15 and len(node) > schema.get("minItems", 0):
                    del node[index]
                    return (*path, index, "(removed)")
                if isinstance(node[index], dict | list):
                    return self._mutate(node[index], item, root, rng, names, (*path, index))
                node[index] = self.value(item, root, rng, names, str(path[-1]))
                return (*path, index)
            node.append(self.value(item, root, rng, names, str(path[-1])))
            return (*path, len(node) - 1)
        return path

    def value(
        self,
        schema: dict[str, Any],
        root: dict[str, Any],
        rng: random.Random,
        names: Names,
        hint: str,
        depth: int = 0,
    ) -> Any:
        """A value `schema` allows (or nearly: an out-of-range number now and then)."""
        schema = self._resolve(schema, root)
        if "anyOf" in schema:
            return self.value(rng.choice(schema["anyOf"]), root, rng, names, hint, depth)
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if "const" in schema:
            return schema["const"]
        kind = schema.get("type")
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "integer":
            low = schema.get("minimum", schema.get("exclusiveMinimum", -1))
            high = schema.get("maximum", low + 200)
            if hint in ("port", "targetPort") or "port" in hint.lower():
                return rng.choice([p for p in names.ports if isinstance(p, int)])
            return rng.randint(int(low), int(min(high, low + 200)))
        if kind == "number":
            return round(rng.uniform(0, 100), 1)
        if kind == "null":
            return None
        if kind == "array":
            if depth > 3:
                return []
            count = max(schema.get("minItems", 0), rng.randint(0, 2))
            item = schema.get("items", {})
            return [self.value(item, root, rng, names, hint, depth + 1) for _ in range(count)]
        if kind == "object":
            if depth > 3:
                return {}
            out: dict[str, Any] = {}
            properties = schema.get("properties", {})
            for key in schema.get("required", ()):
                out[key] = self.value(properties.get(key, {}), root, rng, names, key, depth + 1)
            optional = [k for k in properties if k not in out]
            for key in rng.sample(optional, k=min(len(optional), rng.randint(0, 2))):
                out[key] = self.value(properties[key], root, rng, names, key, depth + 1)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and not properties and rng.random() < 0.7:
                key = rng.choice([*names.versions, "app", "x-user", "team"])
                out[key] = self.value(extra, root, rng, names, key, depth + 1)
            return out
        return self.string(schema, rng, names, hint)

    def string(self, schema: dict[str, Any], rng: random.Random, names: Names, hint: str) -> str:
        """A string for a field named `hint`: names the tree uses, most of the time."""
        lowered = hint.lower()
        pattern = schema.get("pattern", "")
        if any(word in lowered for word in ("service", "calls", "from", "to")) or "/)?" in pattern:
            ref = rng.choice(names.services) if names.services else "default/x"
            return ref if rng.random() < 0.5 else ref.split("/", 1)[1]
        if "namespace" in lowered:
            return rng.choice(names.namespaces)
        if "identity" in lowered:
            namespace = rng.choice(names.namespaces)
            return f"{namespace}/{rng.choice(['sa', 'svc-sa', 'default'])}"
        if lowered in ("stable", "canary", "version") or "version" in lowered:
            return rng.choice(names.versions)
        if any(word in lowered for word in ("timeout", "time", "interval", "ttl", "until")):
            return rng.choice(DURATIONS) if "until" not in lowered else "2027-01-01T00:00:00Z"
        if "name" in lowered:
            return rng.choice(["a", "b", "web", "v1"])
        return rng.choice(WORDS)


def _fits(node: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return (
        (kind == "object" and isinstance(node, dict))
        or (kind == "array" and isinstance(node, list))
        or (kind == "string" and isinstance(node, str))
        or (kind == "integer" and isinstance(node, int))
    )


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*.yaml"))
        if path.is_file()
    }
