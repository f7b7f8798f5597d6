"""Stage: rate limits. Each authenticated request counts against its credential's policy for the
operation's class (`reads`, `writes`, or the contract's `x-rate-limit-class`), then, if that allowed
it, against its organization's policy; counts are shared by every worker and process
(`platform/ratelimit`). Over either: 429 `rate_limited` with `Retry-After`. Every answer the limiter
counted carries `RateLimit-Policy` and `RateLimit`, errors included (ADR 0024)."""

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


def too_many(refused: Decision) -> HttpProblem:
    """The 429 for a refused decision, naming the policies it was refused by."""
    spent = [usage.policy for usage in refused.usages if usage.remaining == 0]
    named = ", ".join(f"{policy.name} ({policy.quota} per {policy.window_s} s)" for policy in spent)
    retry_after = refused.retry_after_s or 1
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
        own = (policies[exchange.operation.rate_limit_class], f"credential:{principal.credential_id}")
        shared = (policies["organization"], f"organization:{principal.organization_id}")
        # The organization's count is shared by its keys: a key refused on its own policy only looks
        # at it, so one runaway key cannot spend the quota of every other.
        mine = self.limiter.hit(own)
        theirs = self.limiter.hit(shared) if mine.allowed else self.limiter.test(shared)
        describe(Decision(mine.allowed and theirs.allowed, mine.usages + theirs.usages, None), exchange)
        refused = mine if not mine.allowed else theirs
        if not refused.allowed:
            raise too_many(refused)
        return proceed(exchange)
