"""NATS JetStream: the external event stream the relay publishes to and `bookwell events tail` reads.

One stream holds every Bookwell event, subject `<prefix>.<organization id>.<event type>`. Each
message carries `Nats-Msg-Id` = event id, so the stream drops a copy published again inside its
duplicate window (a relay that crashed after publishing and before committing), plus the request id
and `traceparent` of the request that caused it.

nats-py is asyncio; Bookwell's processes are not. The client lives on an event loop in a thread of
its own (so it keeps answering the server's pings between batches) and the blocking methods here
hand coroutines to it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import nats
import structlog
from nats.js.api import DeliverPolicy
from nats.js.api import StorageType
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from bookwell.platform.messaging.outbox import EVENT_RETENTION
from bookwell.platform.messaging.relay import Outgoing

T = TypeVar("T")
log = structlog.get_logger("bookwell.jetstream")
RETENTION = EVENT_RETENTION  # as long as the event log keeps events


async def _log_error(error: Exception) -> None:
    """nats-py's connection errors, one line each (it reconnects by itself)."""
    log.warning("nats_error", error=f"{type(error).__name__}: {error}")


class JetStream:
    """A connection to NATS with Bookwell's stream; `publish` implements the relay's Publisher."""

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        subject_prefix: str,
        duplicate_window_s: float,
        timeout_s: float = 5.0,
        create_stream: bool = True,
    ) -> None:
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jetstream", daemon=True)
        self._thread.start()
        self._nc = self._call(
            nats.connect(url, connect_timeout=timeout_s, max_reconnect_attempts=-1, error_cb=_log_error)
        )
        self._js = self._nc.jetstream(timeout=timeout_s)
        if create_stream:
            self._call(self._ensure_stream(duplicate_window_s))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout_s * 2)

    async def _ensure_stream(self, duplicate_window_s: float) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=duplicate_window_s,
            max_age=RETENTION.total_seconds(),
        )
        try:
            existing = (await self._js.stream_info(self.stream)).config
        except NotFoundError:
            await self._js.add_stream(config)
            log.info("jetstream_stream_created", stream=self.stream, subjects=config.subjects)
            return
        # An existing stream belongs to its operators (limits, replicas): read it, never rewrite it.
        if existing.subjects != config.subjects or existing.duplicate_window != config.duplicate_window:
            log.warning(
                "jetstream_stream_differs",
                stream=self.stream,
                subjects=existing.subjects,
                duplicate_window_s=existing.duplicate_window,
                expected_subjects=config.subjects,
                expected_duplicate_window_s=config.duplicate_window,
            )

    def subject(self, organization_id: str, event_type: str) -> str:
        """Where an organization's events of one type are published."""
        return f"{self.subject_prefix}.{organization_id}.{event_type}"

    def publish(self, events: Sequence[Outgoing]) -> None:
        """Publish in order and return once the stream acknowledged every event (raises otherwise)."""
        self._call(self._publish(events))

    async def _publish(self, events: Sequence[Outgoing]) -> None:
        acks = await asyncio.gather(
            *(
                self._js.publish(
                    self.subject(item.event.organization_id, item.event.type),
                    json.dumps(
                        {**item.event.as_dict(), "organization_id": item.event.organization_id}, separators=(",", ":")
                    ).encode(),
                    headers=self._headers(item),
                )
                for item in events
            )
        )
        duplicates = sum(1 for ack in acks if ack.duplicate)
        if duplicates:
            log.info("jetstream_duplicates_dropped", count=duplicates)

    @staticmethod
    def _headers(item: Outgoing) -> dict[str, str]:
        headers = {"Nats-Msg-Id": item.event.id}
        if item.context.request_id:
            headers["Bookwell-Request-Id"] = item.context.request_id
        if item.context.traceparent:
            headers["traceparent"] = item.context.traceparent
        return headers

    def tail(self, on_message: Callable[[dict[str, Any], dict[str, str]], bool], *, from_start: bool) -> None:
        """Call `on_message(event, headers)` for each event as it arrives, until it returns False."""
        done = threading.Event()

        async def subscribe() -> Any:
            async def handle(message: Any) -> None:
                if not done.is_set() and not on_message(json.loads(message.data), dict(message.headers or {})):
                    done.set()

            policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
            return await self._js.subscribe(
                f"{self.subject_prefix}.>", stream=self.stream, cb=handle, ordered_consumer=True, deliver_policy=policy
            )

        subscription = self._call(subscribe())
        try:
            done.wait()
        finally:
            self._call(subscription.unsubscribe())

    def close(self) -> None:
        """Flush and close the connection, then stop the loop."""
        try:
            self._call(self._nc.drain())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=self.timeout_s)
            if not self._thread.is_alive():
                self._loop.close()  # its self-pipe too
