"""Where a webhook may go, and the client that takes it there (ADR 0032).

`UrlPolicy` refuses URLs that would reach loopback, private, link-local, multicast, reserved or
cloud-metadata addresses (and `http` outside development) unless the operator allowed their
network. It is applied when an endpoint is saved and again on every attempt, to the addresses the
name resolves to *then*; the sender connects to exactly the address it checked (the `Host` header
and TLS name stay the URL's), so a name re-pointed after the check (DNS rebinding) cannot slip
through. Redirects are never followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to now (empty when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
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
        for address in addresses:
            if not self._reachable(address):
                raise UrlForbidden(
                    f"{host} is {address}, a {_kind(address)} address; webhooks go to public addresses only"
                    " (BOOKWELL_WEBHOOK_ALLOWED_NETWORKS allows others)."
                )
        if not addresses and not unresolved_ok:
            raise UrlUnresolvable(f"{host} does not resolve.")
        if parts.scheme == "http" and not self.http_allowed and not (addresses and all(map(self._allowed, addresses))):
            raise UrlForbidden("A webhook URL is https outside development.")
        return Target(parts, host, port, addresses[0] if addresses else None)

    def _allowed(self, address: IpAddress) -> bool:
        plain = _plain(address)
        return any(plain in network for network in self.allowed if network.version == plain.version)

    def _reachable(self, address: IpAddress) -> bool:
        plain = _plain(address)
        return self._allowed(plain) or (plain.is_global and not plain.is_multicast)


def _plain(address: IpAddress) -> IpAddress:
    """An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: IpAddress) -> str:
    plain = _plain(address)
    for kind in ("loopback", "link_local", "multicast", "private", "unspecified", "reserved"):
        if getattr(plain, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


class WebhookSender:
    """Makes attempts: one POST of the signed body to the checked address, never following a redirect."""

    def __init__(self, policy: UrlPolicy, *, connect_timeout_s: float, timeout_s: float) -> None:
        self.policy = policy
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the address checked is the address reached
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def send(self, url: str, headers: Mapping[str, str], body: str, *, number: int, now: datetime) -> Attempt:
        """One attempt; every failure is an outcome, never an exception."""
        started = time.monotonic()

        def outcome(
            status: int | None, error: str | None, text: str | None = None, retry: float | None = None
        ) -> Attempt:
            latency = round((time.monotonic() - started) * 1000)
            return Attempt(number, now, status, latency, error, text, retry)

        try:
            target = self.policy.check(url, unresolved_ok=False)
        except UrlForbidden as refused:
            return outcome(
                None, "unresolvable" if isinstance(refused, UrlUnresolvable) else "url_forbidden", refused.detail
            )
        assert target.address is not None
        literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        address_url = target.url._replace(netloc=f"{literal}:{target.port}").geturl()
        host_header = target.url.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        request_headers = {
            **headers,
            "Host": host_header,
            "Content-Type": "application/json",
            "User-Agent": "Bookwell-Webhooks/1",
        }
        try:
            with self._client.stream(
                "POST", address_url, content=body.encode(), headers=request_headers, extensions=extensions
            ) as response:
                first = b""
                for chunk in response.iter_bytes():
                    first += chunk
                    if len(first) >= RESPONSE_BODY_BYTES:
                        break
                text = first[:RESPONSE_BODY_BYTES].decode("utf-8", errors="replace")
                retry = _retry_after(response) if response.status_code in {429, 503} else None
                return outcome(response.status_code, None, text, retry)
        except httpx.ConnectTimeout:
            return outcome(None, "connect_timeout")
        except httpx.TimeoutException:
            return outcome(None, "timeout")
        except httpx.ConnectError:
            return outcome(None, "connect_failed")
        except httpx.HTTPError as error:
            return outcome(None, "transport_error", type(error).__name__)

    def close(self) -> None:
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
