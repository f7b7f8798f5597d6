"""Where a webhook may go, and the client that takes it there (ADR 0032).

`UrlPolicy` refuses URLs that would reach loopback, private, link-local, multicast, reserved or
cloud-metadata addresses (and `http` outside development) unless the operator allowed their
network. It is applied when an endpoint is saved and again on every attempt, to the addresses the
name resolves to *then*; the sender connects to exactly the address it checked (the `Host` header
and TLS name stay the URL's), so a name re-pointed after the check (DNS rebinding) cannot slip
through. Redirects are never followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult
from urllib.parse import urlsplit

import httpx

from bookwell.notifications.domain import Attempt
from bookwell.notifications.domain import UrlForbidden
from bookwell.notifications.domain import UrlUnresolvable
from bookwell.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
RESPONSE_BODY_BYTES = 1024
Resolver = Callable[[str, int], Sequence[IpAddress]]


RESOLVE_TIMEOUT_S = 2.0  # a slow resolver must not hold a request (or SQLite's write lock) longer


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to now (empty when it does not, or not within RESOLVE_TIMEOUT_S).

    Each look-up has a thread of its own, left to finish alone when it is too slow: a shared pool
    would let one tenant's name servers that never answer starve every other tenant's look-ups."""
    found: list[Any] = []

    def look_up() -> None:
        with contextlib.suppress(OSError, UnicodeError):  # does not resolve: nothing found
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))

    lookup = threading.Thread(target=look_up, name="webhook-dns", daemon=True)
    lookup.start()
    lookup.join(RESOLVE_TIMEOUT_S)
    if lookup.is_alive():
        return []
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found))


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the address to connect to (None: the name does not resolve now)."""

    url: SplitResult
    host: str
    port: int
    address: IpAddress | None


class UrlPolicy:
    """Which URLs webhooks may be sent to, from the settings."""

    def __init__(self, allowed: Sequence[IpNetwork], *, http_allowed: bool, resolver: Resolver = resolve) -> None:
        self.allowed = tuple(allowed)
        self.http_allowed = http_allowed
        self.resolver = resolver

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver = resolve) -> UrlPolicy:
        given = [part.strip() for part in settings.webhook_allowed_networks.split(",") if part.strip()]
        allowed = [ipaddress.ip_network(network, strict=False) for network in given]
        development = settings.env == "development"
        return cls([*allowed, *LOOPBACK] if development else allowed, http_allowed=development, resolver=resolver)

    def check(self, url: str, *, unresolved_ok: bool) -> Target:
        """The URL's target if a webhook may go there now; `UrlForbidden` says why not. A name that
        does not resolve passes only with `unresolved_ok` (an endpoint may be set up before its DNS)."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise UrlForbidden("A webhook URL is https (or http in development).")
        if parts.username is not None or parts.password is not None:
            raise UrlForbidden("A webhook URL carries no credentials; verify the signature instead.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise UrlForbidden("The URL's port is not a port.") from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlForbidden("The URL names no host.")
        try:
            addresses: Sequence[IpAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = self.resolver(host, port)
        if not all(map(self._reachable, addresses)):
            # Which address, and of what kind, stays unsaid: it would map a network's names for its tenants.
            raise UrlForbidden(
                f"{host} is or resolves to an address webhooks may not reach (loopback, private, link-local,"
                " multicast or reserved); they go to public addresses only."
            )
        if not addresses and not unresolved_ok:
            raise UrlUnresolvable(f"{host} does not resolve.")
        operators = bool(addresses) and all(map(self._allowed, addresses))
        if parts.scheme == "http" and not self.http_allowed and not operators:
            raise UrlForbidden("A webhook URL is https outside development.")
        return Target(parts, host, port, addresses[0] if addresses else None)

    def _allowed(self, address: IpAddress) -> bool:
        """In an operator's network, as written or as the IPv4 address an IPv6 form carries."""
        for candidate in filter(None, (address, _embedded_ipv4(address))):
            if any(candidate in network for network in self.allowed if network.version == candidate.version):
                return True
        return False

    def _reachable(self, address: IpAddress) -> bool:
        """Allowed by the operator, or public: global unicast and in no special-purpose block; an
        IPv6 form that carries an IPv4 address (mapped, NAT64) is judged by that address."""
        embedded = _embedded_ipv4(address)
        return self._allowed(address) or _public(address if embedded is None else embedded)


# Special-purpose blocks (RFC 6890 and successors) beside what `is_global` says, which varies with
# the Python release; IPv6 forms that tunnel or translate to IPv4 other than NAT64's are refused.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
        "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(address: IpAddress) -> bool:
    blocked = any(address in block for block in _NOT_PUBLIC if block.version == address.version)
    return address.is_global and not address.is_multicast and not blocked


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::/96`)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class WebhookSender:
    """Makes attempts: one POST of the signed body to the checked address, never following a redirect."""

    def __init__(self, policy: UrlPolicy, *, connect_timeout_s: float, timeout_s: float) -> None:
        self.policy = policy
        self.deadline_s = connect_timeout_s + timeout_s  # the longest an attempt may read its answer
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the address checked is the address reached
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            # No connection is kept: one is checked for one host name, and another name on the same
            # address must not ride it (its TLS name was never verified).
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=0),
        )

    def send(self, url: str, headers: Mapping[str, str], body: str, *, now: datetime) -> Attempt:
        """One attempt; every failure is an outcome, never an exception."""
        started = time.monotonic()

        def outcome(
            status: int | None, error: str | None, text: str | None = None, retry: float | None = None
        ) -> Attempt:
            latency = round((time.monotonic() - started) * 1000)
            return Attempt(0, now, status, latency, error, text, retry)  # numbered when recorded

        try:
            target = self.policy.check(url, unresolved_ok=False)
        except UrlForbidden as refused:
            return outcome(None, "unresolvable" if isinstance(refused, UrlUnresolvable) else "url_forbidden")
        assert target.address is not None
        literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        address_url = target.url._replace(netloc=f"{literal}:{target.port}").geturl()
        request_headers = {
            **headers,
            "Host": target.url.netloc,
            "Content-Type": "application/json",
            "User-Agent": "Bookwell-Webhooks/1",
            "Accept-Encoding": "identity",  # the first bytes are stored as they came, never inflated
        }
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        try:
            with self._client.stream(
                "POST", address_url, content=body.encode(), headers=request_headers, extensions=extensions
            ) as response:
                first = b""
                for chunk in response.iter_raw():
                    first += chunk
                    if len(first) >= RESPONSE_BODY_BYTES or time.monotonic() - started > self.deadline_s:
                        break  # enough to show, or a receiver dripping its answer: either way, done
                text = first[:RESPONSE_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "")
                retry = retry_after(response) if response.status_code in {429, 503} else None
                return outcome(response.status_code, None, text, retry)
        except httpx.ConnectTimeout:
            return outcome(None, "connect_timeout")
        except httpx.TimeoutException:
            return outcome(None, "timeout")
        except httpx.ConnectError:
            return outcome(None, "connect_failed")
        except Exception:  # noqa: BLE001 - whatever a receiver sends back ends as a failed attempt, never a crash
            return outcome(None, "transport_error")

    def close(self) -> None:
        self._client.close()


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # `-0000`: UTC, says RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
