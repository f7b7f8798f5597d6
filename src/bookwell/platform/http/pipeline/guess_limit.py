"""Stage: failed authentication, limited per client address. Each 401 counts against the
`auth_failures` policy for the address it came from; once spent, every secured operation from that
address is 429 until the window resets, before any credential is even looked at, so a key cannot be
guessed at hundreds of tries a second. The answers say so in `RateLimit-Policy` and `RateLimit`."""

from __future__ import annotations

import ipaddress

import structlog
from flask import Response
from flask import request

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.pipeline.rate_limit import describe
from bookwell.platform.http.pipeline.rate_limit import too_many
from bookwell.platform.http.problems import HttpProblem
from bookwell.platform.ratelimit import Policy
from bookwell.platform.ratelimit import RateLimiter

log = structlog.get_logger("bookwell.http")


def client_key(address: str | None) -> str:
    """What failed authentications are counted by: the IPv4 address, or the IPv6 /64 (one host can
    take any address of its /64, so counting single IPv6 addresses would count nothing)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return f"address:{address or 'unknown'}"
    if parsed.version == 6:
        return f"address:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"address:{parsed}"


class GuessLimit:
    """Refuses an address whose failed authentications spent `policy`; counts each new failure.

    The look and the count are two steps: concurrent guesses from one address may overshoot the
    quota by as many as are in flight at once, never more.
    """

    def __init__(self, limiter: RateLimiter, policy: Policy, *, proxy_hops: int) -> None:
        self.limiter = limiter
        self.policy = policy
        self.proxy_hops = proxy_hops
        self._warned = False

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        if exchange.operation is None or exchange.operation.scopes is None:
            return proceed(exchange)
        if not self.proxy_hops and not self._warned and "X-Forwarded-For" in request.headers:
            self._warned = True  # once per process: every client may share one proxy's address
            log.warning("forwarded_for_ignored", hint="set BOOKWELL_PROXY_HOPS to the proxies in front")
        key = (self.policy, client_key(request.remote_addr))
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
