"""Rate limits without a framework: policies and per-organization overrides, fixed-window counters in
Redis or the application's database, decisions that fail open, and the IETF RateLimit header values."""

from bookwell.platform.ratelimit.headers import POLICY_HEADER
from bookwell.platform.ratelimit.headers import RATELIMIT_HEADER
from bookwell.platform.ratelimit.headers import policy_header
from bookwell.platform.ratelimit.headers import ratelimit_header
from bookwell.platform.ratelimit.limiter import Decision
from bookwell.platform.ratelimit.limiter import RateLimiter
from bookwell.platform.ratelimit.limiter import Usage
from bookwell.platform.ratelimit.limiter import build_rate_limiter
from bookwell.platform.ratelimit.policies import Override
from bookwell.platform.ratelimit.policies import Policy
from bookwell.platform.ratelimit.policies import PolicyResolver
from bookwell.platform.ratelimit.policies import clear_override
from bookwell.platform.ratelimit.policies import default_policies
from bookwell.platform.ratelimit.policies import list_overrides
from bookwell.platform.ratelimit.policies import set_override
from bookwell.platform.ratelimit.storage import SqlCounters
from bookwell.platform.ratelimit.storage import counters_for
from bookwell.platform.ratelimit.storage import purge_expired

__all__ = [
    "POLICY_HEADER",
    "RATELIMIT_HEADER",
    "Decision",
    "Override",
    "Policy",
    "PolicyResolver",
    "RateLimiter",
    "SqlCounters",
    "Usage",
    "build_rate_limiter",
    "clear_override",
    "counters_for",
    "default_policies",
    "list_overrides",
    "policy_header",
    "purge_expired",
    "ratelimit_header",
    "set_override",
]
