"""Resilience `localRateLimit` → Envoy's local rate limit on the inbound route.

Each inbound HTTP listener carries the `envoy.filters.http.local_ratelimit` filter with
no bucket (it limits nothing by itself); a port whose Resilience (its own, else the
service's) declares a limit gets a token bucket on its route — `requests` tokens,
refilled every `per` — so a changed limit, like a changed access rule, is an RDS push that
applies to the next request. A request over the limit gets 429. Istio has no v1 field for
it (lint says so for that target); this is where the Envoy target applies it.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.type.v3 import percent_pb2, token_bucket_pb2
from google.protobuf import wrappers_pb2
from google.protobuf.any_pb2 import Any as AnyConfig

from compiler.kinds.resilience.model import LocalRateLimit
from compiler.lower.envoy.common import duration, pack
from compiler.model.records import ServiceRecord

LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"
STAT_PREFIX = "local_rate_limit"


def port_limit(record: ServiceRecord, port: int) -> LocalRateLimit | None:
    """The limit in force on service port `port`: its own Resilience's, else the
    service-wide one's."""
    own = dict(record.port_resilience).get(port)
    if own is not None and own.local_rate_limit is not None:
        return own.local_rate_limit
    return record.resilience.local_rate_limit if record.resilience is not None else None


def http_filter() -> hcm.HttpFilter:
    """The listener's filter, bucketless: routes carry the limits."""
    config = local_rate_limit_pb2.LocalRateLimit(stat_prefix=STAT_PREFIX)
    return hcm.HttpFilter(name=LOCAL_RATE_LIMIT, typed_config=pack(config))


def per_route(limit: LocalRateLimit) -> AnyConfig:
    everyone = base_pb2.RuntimeFractionalPercent(
        default_value=percent_pb2.FractionalPercent(
            numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
        ),
        runtime_key=f"{STAT_PREFIX}_enabled",
    )
    enforced = base_pb2.RuntimeFractionalPercent()
    enforced.CopyFrom(everyone)
    enforced.runtime_key = f"{STAT_PREFIX}_enforced"
    config = local_rate_limit_pb2.LocalRateLimit(
        stat_prefix=STAT_PREFIX,
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=limit.requests,
            tokens_per_fill=wrappers_pb2.UInt32Value(value=limit.requests),
            fill_interval=duration(limit.per),
        ),
        filter_enabled=everyone,
        filter_enforced=enforced,
    )
    return pack(config)
