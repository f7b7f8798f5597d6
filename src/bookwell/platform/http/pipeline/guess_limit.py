"""Stage: failed authentication, limited per client address. Each 401 counts against the
`auth_failures` policy for the address it came from; once spent, every secured operation from that
address is 429 until the window resets, before any credential is even looked at, so a key cannot be
guessed at hundreds of tries a second. The answers say so in `RateLimit-Policy` and `RateLimit`."""

from __future__ import annotations

from flask import Response
from flask import request

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.pipeline.rate_limit import describe
from bookwell.platform.http.pipeline.rate_limit import too_many
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import RateLimiter


class GuessLimit:
    """Refuses an address whose failed authentications spent `policy`; counts each new failure."""

    def __init__(self, limiter: RateLimiter, policy: Policy) -> None:
        self.limiter = limiter
        self.policy = policy

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        if exchange.operation is None or exchange.operation.scopes is None:
            return proceed(exchange)
        key = (self.policy, f"address:{request.remote_addr or 'unknown'}")
        looked = self.limiter.test(key)
        if not looked.allowed:
            describe(looked, exchange)
            raise too_many(looked)
        try:
            return proceed(exchange)
        except HttpProblem as problem:
            if problem.status == 401:
                describe(self.limiter.hit(key), exchange)
            raise
