"""Stage: rate limits. Each authenticated request counts against its credential's policy for the
operation's class (`reads`, `writes`, or the contract's `x-rate-limit-class`) and its organization's
policy, shared by every worker and process (`platform/ratelimit`). Over either: 429 `rate_limited`
with `Retry-After`. Every answer carries `RateLimit-Policy` and `RateLimit` (ADR 0024)."""

from __future__ import annotations

from flask import Response

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.kernel.context import current
from bookwell.platform.ratelimit import POLICY_HEADER
from bookwell.platform.ratelimit import RATELIMIT_HEADER
from bookwell.platform.ratelimit import Decision
from bookwell.platform.ratelimit import PolicyResolver
from bookwell.platform.ratelimit import RateLimiter
from bookwell.platform.ratelimit import policy_header
from bookwell.platform.ratelimit import ratelimit_header


def describe(decision: Decision, exchange: Exchange) -> None:
    """Put the decision's headers on the exchange's answer (none when nothing was counted)."""
    if decision.usages:
        exchange.headers[POLICY_HEADER] = policy_header(decision.usages)
        exchange.headers[RATELIMIT_HEADER] = ratelimit_header(decision.usages)


def too_many(decision: Decision) -> HttpProblem:
    """The 429 for a refused decision."""
    spent = [usage.policy for usage in decision.usages if usage.remaining == 0]
    named = ", ".join(f"{policy.name} ({policy.quota} per {policy.window_s} s)" for policy in spent)
    retry_after = decision.retry_after_s or 1
    return HttpProblem(
        429,
        "rate_limited",
        "Too many requests",
        f"Over the rate limit: {named}; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


class RateLimit:
    """Counts every authenticated operation; public operations and other routes pass uncounted."""

    def __init__(self, limiter: RateLimiter, policies: PolicyResolver) -> None:
        self.limiter = limiter
        self.policies = policies

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        principal = current().principal
        if exchange.operation is None or principal is None:
            return proceed(exchange)
        policies = self.policies.policies_for(principal.organization_id)
        decision = self.limiter.hit(
            (policies[exchange.operation.rate_limit_class], f"credential:{principal.credential_id}"),
            (policies["organization"], f"organization:{principal.organization_id}"),
        )
        describe(decision, exchange)
        if not decision.allowed:
            raise too_many(decision)
        return proceed(exchange)
