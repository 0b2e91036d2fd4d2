"""A TCP proxy on 127.0.0.1 that adds a fixed delay each way: a network in one process.

    .venv/bin/python benchmarks/latency_proxy.py --delay-ms 5 --to 127.0.0.1:5432

Every chunk read from one side is written to the other ``delay`` seconds later, in order,
so a request/response pair costs 2 x delay more than on loopback (a round trip), however
many bytes it carries: it models latency, not bandwidth. Used by ``network.py``; also
runnable on its own (it prints its port and serves until Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    loop = asyncio.get_running_loop()
    try:
        while chunk := await reader.read(65536):
            loop.call_later(delay, writer.write, chunk)
        await asyncio.sleep(delay)  # let the delayed chunks out before closing
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _serve(
    upstream: tuple[str, int], delay: float, ready: threading.Event, port: list[int]
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port.append(server.sockets[0].getsockname()[1])
    ready.set()
    async with server:
        await server.serve_forever()


@contextmanager
def latency_proxy(upstream: str = "127.0.0.1:5432", delay_ms: float = 5.0) -> Iterator[int]:
    """Run the proxy in a daemon thread; yield its port on 127.0.0.1."""
    host, _, port_text = upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the proxy forwards to this machine only (127.0.0.1)")
    ready, port = threading.Event(), []
    loop = asyncio.new_event_loop()
    task_holder: list[asyncio.Task[None]] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_serve((host, int(port_text)), delay_ms / 1000, ready, port))
        task_holder.append(task)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=main, daemon=True, name="latency-proxy")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the latency proxy did not start")
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(task_holder[0].cancel)
        thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay (ms)")
    parser.add_argument("--to", default="127.0.0.1:5432", help="upstream HOST:PORT")
    args = parser.parse_args()
    with latency_proxy(args.to, args.delay_ms) as port:
        print(f"127.0.0.1:{port} -> {args.to}, +{args.delay_ms:g} ms each way", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
