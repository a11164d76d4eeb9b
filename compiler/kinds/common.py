"""Types shared by every intent kind: the base model, metadata, durations, references."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class IntentModel(BaseModel):
    """Base for every intent model: unknown fields are errors, field names are camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )

    def model_post_init(self, context: Any, /) -> None:
        """Share the set of fields given among equal ones: pydantic makes one per model
        (~45 per service file, 216 bytes each); models are frozen and a copy copies it, so
        the shared set is never changed."""
        fields = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(fields), fields)
        if shared is not fields:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
"""Each distinct set of given fields, once (a few hundred for every kind together)."""


def duration_ms(text: str) -> float:
    """Milliseconds in a duration like `1m30s`; the text is assumed valid."""
    return sum(float(n) * _UNIT_MS[unit] for n, unit in _DURATION_PART.findall(text))


def format_ms(ms: float) -> str:
    """A duration in the unit a human would write it in (`250ms`, `1.5s`, `2m`)."""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:g}{unit}"
    return f"{ms:g}ms"


def _check_duration(value: str) -> str:
    if not DURATION_RE.match(value):
        raise ValueError(
            f"{value!r} is not a duration; write a number with a unit: "
            "ms, s, m, h or d (e.g. 500ms, 2s, 1m30s)"
        )
    return value


Duration = Annotated[
    str,
    Field(
        pattern=DURATION_RE.pattern, json_schema_extra={"examples": ["500ms", "2s", "1m30s", "30d"]}
    ),
    AfterValidator(_check_duration),
]
"""A duration as written by the user (`500ms`, `2s`, `1m30s`, `30d`)."""

Name = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
"""A Kubernetes DNS-1123 label (names of services, namespaces, versions)."""

Ref = Annotated[
    str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
"""A service reference: `name` (same namespace) or `namespace/name`."""

_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}$"
)
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


def _check_label_key(value: str) -> str:
    prefix = value.rpartition("/")[0]
    if not _LABEL_KEY.match(value) or len(prefix) > 253:
        raise ValueError(
            f"label key {value!r} is not a Kubernetes label key; write an optional DNS prefix "
            "and '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a "
            "letter or digit (e.g. app, app.kubernetes.io/name)"
        )
    return value


def _check_label_value(value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise ValueError(
            f"label value {value!r} is not a Kubernetes label value (Kubernetes and Istio "
            "reject it, and '*' is no wildcard there); write at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit, or ''"
        )
    return value


Labels = dict[
    Annotated[str, Field(min_length=1, max_length=317), AfterValidator(_check_label_key)],
    Annotated[str, Field(max_length=63), AfterValidator(_check_label_value)],
]
"""Kubernetes labels (selectors, version labels): the API server's key and value syntax."""


def _to_utc(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value = date.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _assume_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, BeforeValidator(_to_utc), AfterValidator(_assume_utc)]
"""A date (`2026-12-31`, midnight UTC) or an RFC 3339 time."""


class Metadata(IntentModel):
    name: Name
    namespace: Name = "default"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def split_ref(ref: str, namespace: str) -> tuple[str, str]:
    """`name` -> (namespace, name); `ns/name` -> (ns, name)."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return ns, name
    return namespace, ref
