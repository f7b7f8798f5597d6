"""The embedded broker (`BOOKWELL_BROKER_URL=filesystem://...`) under concurrent writers and readers:
every message taken whole and exactly once; an undecodable file set aside, and the reader goes on."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from queue import Empty

from kombu import Connection

from bookwell.platform.messaging import embedded_broker

WRITERS, READERS, EACH = 4, 4, 150


def connect(folder: Path) -> Connection:
    return Connection(
        f"{embedded_broker.SCHEME}://localhost//", transport_options=embedded_broker.transport_options(folder)
    )


def write(folder: Path, writer: int) -> None:
    with connect(folder) as connection:
        queue = connection.SimpleQueue("jobs")
        for n in range(EACH):
            queue.put({"writer": writer, "n": n, "padding": "x" * 4096})  # large enough to be written in parts


def read(folder: Path, results: multiprocessing.Queue[tuple[int, int]], stop_after_idle_s: float) -> None:
    with connect(folder) as connection:
        queue = connection.SimpleQueue("jobs")
        while True:
            try:
                message = queue.get(timeout=stop_after_idle_s)
            except Empty:
                return
            results.put((message.payload["writer"], message.payload["n"]))
            message.ack()


def test_concurrent_writers_and_readers_lose_break_and_double_nothing(tmp_path: Path) -> None:
    results: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
    readers = [multiprocessing.Process(target=read, args=(tmp_path, results, 5.0)) for _ in range(READERS)]
    writers = [multiprocessing.Process(target=write, args=(tmp_path, w)) for w in range(WRITERS)]
    for process in readers + writers:
        process.start()
    received = Counter(results.get(timeout=60) for _ in range(WRITERS * EACH))
    for process in writers + readers:
        process.join(timeout=60)
        assert process.exitcode == 0, "a reader or writer died"
    assert received == Counter({(w, n): 1 for w in range(WRITERS) for n in range(EACH)})
    assert not list((tmp_path / "corrupt").iterdir())
    assert not list((tmp_path / "queue").iterdir())


def test_an_undecodable_message_is_set_aside_and_the_next_one_read(tmp_path: Path) -> None:
    with connect(tmp_path) as connection:
        queue = connection.SimpleQueue("jobs")
        (tmp_path / "queue" / "00000000000000000000_broken.jobs.msg").write_bytes(b'{"body": "half a mess')
        (tmp_path / "queue" / "00000000000000000001_foreign.jobs.msg").write_bytes(b"[]")  # JSON, not a message
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
    assert sorted(path.name for path in (tmp_path / "corrupt").iterdir()) == [
        "00000000000000000000_broken.jobs.msg",
        "00000000000000000001_foreign.jobs.msg",
    ]
