"""HTTP transports behind one small interface, with their exceptions mapped to our error classes.

Two backends: ``httpx`` (the default for correctness checks and probing) and ``aiohttp`` (faster per
request: see benchmarks/generator_capacity.py and README "Load testing"). Both run with *no*
connection-pool cap: an open-loop schedule must never queue requests inside the client, because
that waiting would be hidden inside the measured latency (coordinated omission).

The runner sees only ``Transport.stream`` -> ``Response`` (status, ``chunks()`` of raw bytes) and
``TransportError.kind`` in {"connect", "reset", "stalled"}.
"""

from __future__ import annotations

import collections
import contextlib
import http.cookiejar
import socket
import struct
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any


class TransportError(Exception):
    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class Response(ABC):
    status: int

    @abstractmethod
    def chunks(self) -> AsyncIterator[bytes]: ...

    async def timed_chunks(self) -> AsyncIterator[tuple[float, bytes]]:
        """(``time.perf_counter()`` of arrival, bytes); by default the time the data reached us."""
        async for data in self.chunks():
            yield time.perf_counter(), data

    async def read(self, limit: int = 4096) -> bytes:
        """Up to ``limit`` bytes of the body (error bodies, small JSON answers)."""
        out = b""
        async for data in self.chunks():
            out += data
            if len(out) >= limit:
                break
        return out[:limit]


class Transport(ABC):
    """``read_timeout``: longest silence from the server before the request is declared stalled."""

    name: str  # the --http-client value that selects it

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 120.0):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    @abstractmethod
    def stream(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> contextlib.AbstractAsyncContextManager[Response]: ...

    async def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """A plain GET (health checks, /metrics)."""
        raise NotImplementedError

    async def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        raise NotImplementedError

    @abstractmethod
    async def aclose(self) -> None: ...


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that accepts and sends nothing: every request goes out as a new client's would.

    A load balancer with cookie-based session affinity (GKE's Gateway and Ingress offer it) would
    otherwise pin every request after the first answer to the replica that gave it, and a fleet
    would be measured as one replica. Side requests (health, metrics) need no cookies either."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


# -- httpx ---------------------------------------------------------------------------------------
class _HttpxResponse(Response):
    def __init__(self, resp: Any):
        self._resp = resp
        self.status = resp.status_code

    async def chunks(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for data in self._resp.aiter_raw():
                yield data
        except httpx.ReadTimeout as exc:
            raise TransportError("stalled", f"no data for the read timeout: {exc}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError) as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None


class HttpxTransport(Transport):
    name = "httpx"

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 120.0):
        import httpx

        super().__init__(connect_timeout, read_timeout)
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None),
            trust_env=False,
            cookies=no_cookies(),
        )

    @contextlib.asynccontextmanager
    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> AsyncIterator[Response]:
        import httpx

        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as resp:
                yield _HttpxResponse(resp)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransportError("connect", str(exc) or type(exc).__name__) from None
        except httpx.ReadTimeout as exc:
            raise TransportError("stalled", f"no response for the read timeout: {exc}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        import httpx

        try:
            resp = await self._client.get(url, headers=headers)
            return resp.status_code, resp.content
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransportError("connect", str(exc) or type(exc).__name__) from None
        except httpx.TimeoutException as exc:
            raise TransportError("stalled", str(exc) or type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        import httpx

        try:
            resp = await self._client.post(url, content=body, headers=headers)
            return resp.status_code, resp.content
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransportError("connect", str(exc) or type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        await self._client.aclose()


# -- aiohttp -------------------------------------------------------------------------------------
#: Linux's SO_TIMESTAMPNS (asm-generic/socket.h); Python's socket module does not name it
SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
_TIMESPEC = struct.Struct("qq")  # struct timespec on 64-bit Linux: tv_sec, tv_nsec
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


class _ReceiveTime:
    """The kernel's receive time of the bytes the last ``recv`` returned, on ``perf_counter``'s
    timeline (None when the kernel gave none). One per process: asyncio calls ``recv`` and the
    protocol's ``data_received`` back to back, with nothing in between, so the append that follows
    a read is always that read's."""

    time: float | None = None


class KernelStampedSocket(socket.socket):
    """A TCP socket whose reads carry the time the kernel received the bytes (``SO_TIMESTAMPNS``).

    An event loop busy with other streams reads a socket late: when a batched engine emits a token
    for hundreds of streams in the same millisecond, the streams read last in that burst would be
    stamped milliseconds late by any clock taken in user space. The kernel stamps each packet as it
    lands in the socket's queue, before the loop is involved, so the recorded arrival is the
    arrival. The stamp is CLOCK_REALTIME; it is moved onto ``perf_counter``'s timeline by the two
    clocks' difference read at the same moment (their rates differ by NTP's slew, parts per million).
    For TCP the kernel reports the newest packet a read returns, so pieces that queued up together
    share the last one's time, no earlier than before. ``asyncio``'s socket transport reads with
    ``recv``; this override reads with ``recvmsg`` to get the stamp, and is otherwise the same call.
    """

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self.recvmsg(bufsize, _ANCILLARY_SIZE, flags)
        _ReceiveTime.time = _stamp(ancillary)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """The buffered-protocol read path (``recv_into``), stamped the same way."""
        view = memoryview(buffer)
        n, ancillary, _, _ = self.recvmsg_into([view[:nbytes] if nbytes else view], _ANCILLARY_SIZE, flags)
        _ReceiveTime.time = _stamp(ancillary)
        return n


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's SO_TIMESTAMPNS stamp in a read's ancillary data, on ``perf_counter``'s timeline."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            return sec + nsec * 1e-9 - time.time() + time.perf_counter()
    return None


def kernel_stamped_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's ``socket_factory``: a socket that asks the kernel to stamp what it receives (a plain
    socket where the platform cannot: its pieces are stamped when read, as before)."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    if SO_TIMESTAMPNS is None or not _ANCILLARY_SIZE:
        return socket.socket(family=family, type=type_, proto=proto)
    sock = KernelStampedSocket(family=family, type=type_, proto=proto)
    with contextlib.suppress(OSError):  # if refused, no stamps come back: pieces get the time they are read
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


class _StampedDeque(collections.deque):
    """aiohttp's response buffer, stamping each piece with its arrival time as it is appended.

    aiohttp appends each received piece of the body to ``StreamReader._buffer`` in its protocol
    callback, the moment the socket is read; our coroutine resumes later, after the event loop has
    run every other ready callback. Under a burst (a batched engine emits one token for hundreds of
    streams at once) that wait grows with the burst: stamping at append time keeps it out of the
    measurement, and the kernel's receive time (``KernelStampedSocket``), where there is one, keeps
    out the wait for the read itself. ``popped`` collects (time, size) of the pieces a read consumed.
    """

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.times: collections.deque[float] = collections.deque(time.perf_counter() for _ in self)
        self.popped: list[tuple[float, int]] = []

    def append(self, data: bytes) -> None:
        super().append(data)
        received = _ReceiveTime.time
        self.times.append(received if received is not None else time.perf_counter())

    def appendleft(self, data: bytes) -> None:
        super().appendleft(data)
        self.times.appendleft(self.popped.pop()[0] if self.popped else time.perf_counter())

    def popleft(self) -> bytes:
        data = super().popleft()
        self.popped.append((self.times.popleft(), len(data)))
        return data


class _AiohttpResponse(Response):
    def __init__(self, resp: Any):
        self._resp = resp
        self.status = resp.status
        self._stamped: _StampedDeque | None = None
        reader = resp.content
        # aiohttp 3.x keeps the body in a deque named _buffer; if that ever changes, fall back to
        # the time the data reaches our coroutine (the base class behaviour).
        if isinstance(getattr(reader, "_buffer", None), collections.deque):
            self._stamped = _StampedDeque(reader._buffer)
            reader._buffer = self._stamped

    async def timed_chunks(self) -> AsyncIterator[tuple[float, bytes]]:
        stamped = self._stamped
        if stamped is None:
            async for item in super().timed_chunks():
                yield item
            return
        while data := await self._read():  # no iterator layer between us and aiohttp's buffer
            pieces, stamped.popped = stamped.popped, []
            if len(pieces) == 1 and pieces[0][1] == len(data):
                yield pieces[0][0], data  # the common read: one piece
            elif sum(n for _, n in pieces) != len(data) or not pieces:
                yield time.perf_counter(), data  # a partial-piece read: no exact split
            else:
                offset = 0
                for t, n in pieces:
                    yield t, data[offset:offset + n]
                    offset += n

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self._read():
            yield data

    async def _read(self) -> bytes:
        """What the body has received since the last read (b"" at its end), errors mapped."""
        try:
            return await self._resp.content.readany()
        except Exception as exc:
            raise _read_error(exc) from None


def _read_error(exc: Exception) -> Exception:
    """aiohttp's error while reading a body, as our error class (anything else unchanged)."""
    import aiohttp

    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return TransportError("stalled", f"no data for the read timeout: {exc}")
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                        aiohttp.ClientConnectionError)):
        return TransportError("reset", str(exc) or type(exc).__name__)
    return exc


class AiohttpTransport(Transport):
    name = "aiohttp"

    def __init__(self, connect_timeout: float = 10.0, read_timeout: float = 120.0):
        import aiohttp

        super().__init__(connect_timeout, read_timeout)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session: Any = None

    def _ensure(self) -> Any:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=None, force_close=False,
                                             socket_factory=kernel_stamped_socket)
            # no cookie jar, as no_cookies() for httpx
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False,
                                                  auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    @contextlib.asynccontextmanager
    async def stream(self, url: str, body: bytes, headers: dict[str, str]) -> AsyncIterator[Response]:
        import aiohttp

        session = self._ensure()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                yield _AiohttpResponse(resp)
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from None
        except (aiohttp.ServerTimeoutError, aiohttp.ConnectionTimeoutError) as exc:
            kind = "connect" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "stalled"
            raise TransportError(kind, str(exc) or type(exc).__name__) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                aiohttp.ClientConnectionError) as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def get(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        import aiohttp

        try:
            async with self._ensure().get(url, headers=headers) as resp:
                return resp.status, await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from None
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TransportError("stalled", str(exc) or type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        import aiohttp

        try:
            async with self._ensure().post(url, data=body, headers=headers) as resp:
                return resp.status, await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from None
        except aiohttp.ClientError as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


TRANSPORTS = {"httpx": HttpxTransport, "aiohttp": AiohttpTransport}


def make_transport(name: str, connect_timeout: float = 10.0, read_timeout: float = 120.0) -> Transport:
    return TRANSPORTS[name](connect_timeout=connect_timeout, read_timeout=read_timeout)
