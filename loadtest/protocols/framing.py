"""How bytes on the wire become events, and events become bytes: SSE and concatenated JSON.

Both directions live here so the load-test client, the simulator and the test fixtures frame a
stream the same way. The decoders are linear in the bytes received: a read that completes no event
is only appended to a list of pieces (no copy of what came before, no rescan), and each event's
bytes are joined once when its end arrives. An event larger than ``MAX_EVENT_BYTES`` fails the
request (``event_too_large``) instead of stalling the event loop that every other request shares.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

#: the largest single event accepted; a legitimate token event is a few hundred bytes
MAX_EVENT_BYTES = 4 * 2**20


class ProtocolError(Exception):
    """The stream broke the protocol's promise; ``kind`` is the record's error class."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def sse_event(payload: bytes, space: bool = True) -> bytes:
    """One SSE event carrying ``payload``: ``data: {..}\\n\\n`` (TGI's router writes no space)."""
    return (b"data: " if space else b"data:") + payload + b"\n\n"


SSE_DONE = sse_event(b"[DONE]")


class Framer(ABC):
    """Cuts the byte stream into event payloads."""

    @abstractmethod
    def feed(self, data: bytes) -> list[str]: ...

    @abstractmethod
    def close(self) -> list[str]:
        """Payloads still buffered when the body ends (an unterminated event counts, if complete)."""


class SSEFramer(Framer):
    """Server-sent events: ``data:`` lines, an event ends at a blank line.

    Comment lines (``:``), ``event:``, ``id:`` and ``retry:`` fields are ignored. A ``data:`` line
    that is not followed by a blank line before the body ends is still delivered by ``close`` (some
    servers omit the final blank line) so the parser can judge it. The common shape, one
    ``data:`` line per event and ``\\n\\n`` between events, takes a fast path (one split per read).
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._pieces: list[bytes] = []  # bytes received since the last event boundary
        self._pending = 0
        self._tail = b""  # the last bytes of the pieces: a boundary can span two reads
        self._data: list[str] = []
        self.max_event_bytes = max_event_bytes

    def feed(self, data: bytes) -> list[str]:
        if not data:
            return []
        if not self._pieces and not self._data and data[-2:] == b"\n\n" and b"\r" not in data:
            # the common read: whole events, nothing pending
            return self._data_lines(data) or self._whole(data[:-2].split(b"\n\n"))
        # a data line already complete (its newline consumed) ends its event at the next bare newline
        probe = (self._tail or (b"\n" if self._data else b"")) + data
        if b"\n\n" not in probe and b"\n\r\n" not in probe and b"\r\r" not in probe:
            self._pieces.append(data)
            self._pending += len(data)
            self._tail = probe[-2:]
            if self._pending > self.max_event_bytes:
                raise ProtocolError("event_too_large", f"an event exceeded {self.max_event_bytes} bytes "
                                    "without ending")
            return []
        buf = b"".join(self._pieces) + data if self._pieces else data
        self._pieces, self._pending, self._tail = [], 0, b""
        if b"\r" not in buf and not self._data:
            *events, rest = buf.split(b"\n\n")
            self._keep(rest)
            return self._whole(events)
        return self._lines(buf)

    @staticmethod
    def _data_lines(data: bytes) -> list[str] | None:
        """The payloads of a read made only of one-line ``data:`` events, cut by one C-level split
        (None when the read holds anything else: comments, other fields, multi-line data).

        The read is exactly that shape when it starts with the field and holds two newlines per
        event and no others: a JSON payload cannot hold a raw newline, so no payload can hide a
        separator. A read of a few hundred events then costs a decode and a split, not a Python
        step per event. ``data: `` and TGI's ``data:`` are told apart by the first event; a read
        that mixes them fails the count and takes the general path.
        """
        text = data.decode("utf-8", "replace")
        if text.startswith("data: "):
            sep, start = "\n\ndata: ", 6
        elif text.startswith("data:") and "data: " not in text:
            sep, start = "\n\ndata:", 5
        else:
            return None
        if text.count("\n") != 2 * (text.count(sep) + 1):
            return None
        return text[start:-2].split(sep)

    def _whole(self, events: list[bytes]) -> list[str]:
        """Payloads of complete events (their blank line already cut off)."""
        out: list[str] = []
        for ev in events:
            if ev.startswith(b"data:") and b"\n" not in ev:
                value = ev[5:]
                out.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
            else:
                out.extend(self._lines(ev + b"\n\n"))
        return out

    def _keep(self, rest: bytes) -> None:
        if rest:
            self._pieces, self._pending, self._tail = [rest], len(rest), rest[-2:]

    def _lines(self, buf: bytes) -> list[str]:
        *lines, rest = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._keep(rest)
        out: list[str] = []
        for line in lines:
            if not line:
                if self._data:
                    out.append("\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
        return out

    def close(self) -> list[str]:
        rest = b"".join(self._pieces)
        self._pieces, self._pending, self._tail = [], 0, b""
        out = self._lines(rest + b"\n\n") if rest else []
        self._pieces, self._pending, self._tail = [], 0, b""
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        return out


class JSONSeqFramer(Framer):
    """Concatenated JSON objects with no delimiter (JetStream's HTTP server streams ``{..}{..}``).

    Decoding is attempted only when a read may have completed an object (it contains ``}``), so a
    large object arriving in many reads is joined and parsed once, not re-parsed per read.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = ""
        self._pieces: list[str] = []
        self._pending = 0
        self._decoder = json.JSONDecoder()
        self.max_event_bytes = max_event_bytes

    def feed(self, data: bytes) -> list[str]:
        text = data.decode("utf-8", "replace")
        if "}" not in text and "]" not in text:
            self._pieces.append(text)
            self._pending += len(text)
            if self._pending > self.max_event_bytes:
                raise ProtocolError("event_too_large", f"an object exceeded {self.max_event_bytes} bytes")
            return []
        self._buf = self._buf + "".join(self._pieces) + text
        self._pieces, self._pending = [], 0
        out: list[str] = []
        while True:
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf = ""
                return out
            try:
                _, end = self._decoder.raw_decode(stripped)
            except ValueError:
                self._buf = stripped
                if stripped[0] not in "{[":
                    raise ProtocolError("invalid_json", stripped[:200]) from None
                if len(stripped) > self.max_event_bytes:
                    raise ProtocolError("event_too_large", f"an object exceeded {self.max_event_bytes} bytes") \
                        from None
                return out  # incomplete object: wait for more bytes
            out.append(stripped[:end])
            self._buf = stripped[end:]

    def close(self) -> list[str]:
        rest = (self._buf + "".join(self._pieces)).strip()
        self._buf, self._pieces, self._pending = "", [], 0
        if rest:
            raise ProtocolError("truncated", f"the body ended inside a JSON object: {rest[:120]}")
        return []
