"""Rollout: how traffic to one service is shared among its versions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compiler.kinds.bounds import Duration, Percentage
from compiler.kinds.common import IntentModel, Metadata, Name, Ref


class StringMatch(IntentModel):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("give exactly one of exact, prefix or regex")
        return self


class MatchRule(IntentModel):
    """An A/B rule: requests whose headers/cookies match go to `version`."""

    headers: dict[str, StringMatch] = Field(default_factory=dict)
    cookies: dict[str, StringMatch] = Field(default_factory=dict)
    version: Name

    @model_validator(mode="after")
    def _has_condition(self) -> MatchRule:
        if not self.headers and not self.cookies:
            raise ValueError("a match rule needs at least one header or cookie condition")
        return self


class Analysis(IntentModel):
    success_rate: Percentage | None = Field(
        default=None, description="minimum % of non-5xx responses"
    )
    max_latency: Duration | None = Field(default=None, description="p99 latency bound")
    interval: Duration = "1m"


class Step(IntentModel):
    weight: int = Field(description="% of traffic to the canary at this step")
    pause: Duration | None = None
    analysis: Analysis | None = None


class Mirror(IntentModel):
    version: Name
    percentage: float = 100.0
    allow_non_idempotent: bool = Field(
        default=False, description="also mirror POST/PATCH (the mirror may repeat side effects)"
    )


class RolloutSpec(IntentModel):
    service: Ref
    stable: Name
    canary: Name | None = Field(default=None, description="the candidate version (with steps)")
    split: dict[Name, int] | None = None
    steps: list[Step] | None = None
    match: list[MatchRule] = Field(default_factory=list)
    mirror: Mirror | None = None

    @model_validator(mode="after")
    def _split_or_steps(self) -> RolloutSpec:
        if self.split is not None and self.steps is not None:
            raise ValueError("give either split or steps, not both")
        if self.steps is not None and self.canary is None:
            raise ValueError("steps need a canary version to move traffic to")
        return self


class RolloutDocument(IntentModel):
    api_version: Literal["meshc/v1"]
    kind: Literal["Rollout"]
    metadata: Metadata
    spec: RolloutSpec
