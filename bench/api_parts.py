"""What `bench/api.py` runs besides Bookwell: the bare Flask baseline (served by Gunicorn with the
API's settings) and the open-model load generator (a constant arrival rate over keep-alive
connections, each latency counted from when its request was due, so a stalled server cannot hide
its queue: no coordinated omission)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from flask import Flask

bare = Flask("bare")


@bare.get("/")
def hello() -> dict[str, str]:
    """The baseline: Flask routing a request and answering a small JSON object."""
    return {"hello": "world"}


@dataclass
class OpenRun:
    """What an open-model run saw: latencies (seconds, from due time to the whole answer read) and statuses."""

    due: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer (Content-Length framed, as Gunicorn sends Flask's); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _open_model(
    host: str, port: int, *, rate: float, seconds: float, request: Callable[[int], bytes], connections: int
) -> OpenRun:
    loop = asyncio.get_running_loop()
    count = max(1, int(rate * seconds))
    run = OpenRun(due=count)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))

    async def send(n: int, due_at: float) -> None:
        reader, writer = await idle.get()  # waiting for a connection counts: it is the server's queue
        for attempt in range(2):
            try:
                writer.write(request(n))
                status = await _answer(reader)
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed an idle keep-alive connection: a new one, and the request again.
                writer.close()
                if attempt:
                    raise
                reader, writer = await asyncio.open_connection(host, port)
        run.latencies.append(loop.time() - due_at)
        run.statuses[status] += 1
        idle.put_nowait((reader, writer))

    started = loop.time() + 0.05
    sending = []
    for n in range(count):
        due_at = started + n / rate
        if (wait := due_at - loop.time()) > 0:
            await asyncio.sleep(wait)
        sending.append(asyncio.create_task(send(n, due_at)))
    await asyncio.gather(*sending)
    run.seconds = loop.time() - started
    while not idle.empty():
        idle.get_nowait()[1].close()
    return run


def open_model(
    host: str, port: int, *, rate: float, seconds: float, request: Callable[[int], bytes], connections: int = 64
) -> OpenRun:
    """Send `rate` requests a second for `seconds`, request `n` being `request(n)` (raw HTTP/1.1 bytes)."""
    return asyncio.run(_open_model(host, port, rate=rate, seconds=seconds, request=request, connections=connections))
