"""HTTP clients of the timed loads: one keep-alive connection each.

`raw` (the default) is a minimal HTTP/1.1 client on asyncio streams: on this kind of machine
httpx spends about 1.2 ms of CPU per request against 0.07 ms for it, and on two cores shared
with the service and PostgreSQL that CPU would be charged to the service (and to every read
latency). `httpx` is there to compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

CLIENTS = ("raw", "httpx")


class HttpError(Exception):
    """The request did not get an answer."""


class Connection(Protocol):
    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """Send the request (`body` as JSON); the status and the body of the answer."""
        ...

    async def close(self) -> None: ...


class RawConnection:
    def __init__(self, base_url: str, key: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.headers = (
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {key}\r\n"
            "Accept: application/json\r\n"
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        reused = self._writer is not None
        try:
            try:
                return await self._exchange(method, path, body)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                # The server closes idle keep-alive connections (uvicorn: after 5 s); a request
                # on such a connection gets no answer at all, and is sent again on a new one.
                stale = not isinstance(error, asyncio.IncompleteReadError) or not error.partial
                if not (reused and stale):
                    raise
                await self.close()
                return await self._exchange(method, path, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            await self.close()
            raise HttpError(f"{type(e).__name__}: {e}") from e

    async def _exchange(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        reader, writer = await self._open()
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self.headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        writer.write(head.encode() + b"\r\n" + payload)
        raw_head = await reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            content = await _chunked(reader)
        else:
            content = await reader.read()
            await self.close()
        if headers.get("connection") == "close":
            await self.close()
        return status, content

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpxConnection:
    def __init__(self, base_url: str, key: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(600.0),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise HttpError(f"{type(error).__name__}: {error}") from error
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


def connection(kind: str, base_url: str, key: str) -> Connection:
    if kind == "raw":
        return RawConnection(base_url, key)
    if kind == "httpx":
        return HttpxConnection(base_url, key)
    raise ValueError(f"unknown client {kind!r}")
