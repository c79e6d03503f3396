"""Arrival times come from the kernel's receive stamp (SO_TIMESTAMPNS), not from when the event loop
got round to reading the socket."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from loadtest.http import KernelStampedSocket, _ReceiveTime, kernel_stamped_socket

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")


def test_a_read_carries_the_time_the_bytes_arrived_not_the_time_they_were_read() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    info = socket.getaddrinfo("127.0.0.1", listener.getsockname()[1], type=socket.SOCK_STREAM)[0]
    client = kernel_stamped_socket(info)
    try:
        assert isinstance(client, KernelStampedSocket)
        client.connect(info[4])
        server, _ = listener.accept()
        before_send = time.perf_counter()
        server.sendall(b"data: {}\n\n")
        time.sleep(0.05)  # the loop is busy elsewhere: the bytes wait in the socket
        before_read = time.perf_counter()
        assert client.recv(65536) == b"data: {}\n\n"
        stamp = _ReceiveTime.time
        # the kernel stamped the bytes when they landed, after the send began (within the clock
        # conversion's microsecond) and before the read
        assert stamp is not None and before_send - 1e-3 <= stamp <= before_read
        server.sendall(b"data: [DONE]\n\n")
        time.sleep(0.01)
        buffer = bytearray(64)
        n = client.recv_into(buffer)  # the buffered-protocol path is stamped too
        assert bytes(buffer[:n]) == b"data: [DONE]\n\n" and _ReceiveTime.time is not None
        assert stamp < _ReceiveTime.time <= time.perf_counter()
        server.close()
        assert client.recv(65536) == b""
    finally:
        client.close()
        listener.close()
