"""An attacker for the web remote's flood test (tests/test_web_show.py), run as its own process.

`python -m tests.web_attack PORT SECONDS` sends GETs at up to 10,000 a second over keep-alive
connections from 127.0.0.2 (its own rate bucket: the test's measurements come from 127.0.0.1),
opens 500 WebSockets that it never reads, and mixes in bad requests (no token, forged origin,
oversized body, ../ paths). Prints one JSON object: what it sent and every status it got back.
"""

import asyncio
import base64
import json
import os
import sys
import time

RATE = 10_000  # requests a second, all connections together
CONNECTIONS = 300
SOCKETS = 500
SOURCE = ("127.0.0.2", 0)
BAD = [
    "GET /snapshots/../../etc/passwd HTTP/1.1\r\nHost: {host}\r\n\r\n",
    "GET /static/%2e%2e/web.py HTTP/1.1\r\nHost: {host}\r\n\r\n",
    "POST /api/control HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\n"
    "Content-Length: 2\r\n\r\n{{}}",
    "POST /api/control HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100000\r\n\r\n",
    "GET /api/state HTTP/1.1\r\nHost: evil.example\r\n\r\n",
]


async def connect(port: int, statuses: dict):
    """A connection from 127.0.0.2; refused or reset ones are counted and tried again."""
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port, local_addr=SOURCE)
        except OSError:
            statuses["connect refused"] = statuses.get("connect refused", 0) + 1
            await asyncio.sleep(0.05)


async def flood(port: int, until: float, statuses: dict, sent: list) -> None:
    host = f"127.0.0.1:{port}"
    reader, writer = await connect(port, statuses)
    n = 0
    while time.monotonic() < until:
        text = BAD[n % len(BAD)] if n % 10 == 9 else "GET /api/state HTTP/1.1\r\nHost: {host}\r\n\r\n"
        n += 1
        writer.write(text.format(host=host).encode())
        sent[0] += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            statuses["no answer"] = statuses.get("no answer", 0) + 1
            break
        status = head.split(b" ", 2)[1].decode()
        statuses[status] = statuses.get(status, 0) + 1
        length = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
        await reader.readexactly(int(length[0].split(b":")[1]) if length else 0)
        if b"connection: close" in head.lower():
            writer.close()
            reader, writer = await connect(port, statuses)
        await asyncio.sleep(CONNECTIONS / RATE)  # paced: together, RATE a second at most
    writer.close()


async def silent_sockets(port: int, statuses: dict) -> list:
    """WebSocket upgrades that are never read: the server's frames pile up on its side."""
    held = []
    for _ in range(SOCKETS):
        reader, writer = await connect(port, statuses)
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        held.append(writer)
    return held


async def main(port: int, seconds: float) -> dict:
    statuses: dict = {}
    sent = [0]
    started = time.monotonic()
    held = await silent_sockets(port, statuses)
    until = time.monotonic() + seconds
    await asyncio.gather(*(flood(port, until, statuses, sent) for _ in range(CONNECTIONS)))
    elapsed = time.monotonic() - started
    for writer in held:
        writer.close()
    return {"sent": sent[0], "seconds": round(elapsed, 2), "sockets": SOCKETS, "statuses": statuses}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))))
