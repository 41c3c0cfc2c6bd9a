"""A TCP relay in front of PostgreSQL or Redis that counts round trips and can add network delay.

    relay = Relay(upstream_unix="/path/.s.PGSQL.5432")   # or upstream=("127.0.0.1", 5432)
    relay.start(); ... relay.port ...; relay.round_trips; relay.stop()

A *round trip* is counted each time the server starts answering after the client sent something:
every exchange the client waits on. It is deterministic for a request-response protocol, whatever
the timing, so tests can hold it. `delay_s` is added each way (the one-way latency of the modeled
network): every chunk is forwarded `delay_s` after it arrived, in order, so bursts keep their shape.
Used by the round-trip tests and the benchmark's modeled network; never deployed.
"""

from __future__ import annotations

import heapq
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _Direction:
    """One direction of one connection: forwards chunks `delay_s` after they arrived."""

    def __init__(
        self, source: socket.socket, target: socket.socket, delay_s: float, on_chunk: object
    ) -> None:
        self.source, self.target, self.delay_s, self.on_chunk = source, target, delay_s, on_chunk
        self.queue: list[tuple[float, int, bytes]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.seq = 0

    def read_loop(self) -> None:
        try:
            while True:
                data = self.source.recv(65536)
                if not data:
                    break
                self.on_chunk()  # type: ignore[operator]
                if self.delay_s <= 0:
                    self.target.sendall(data)
                    continue
                with self.cond:
                    self.seq += 1
                    heapq.heappush(self.queue, (time.perf_counter() + self.delay_s, self.seq, data))
                    self.cond.notify()
        except OSError:
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify()

    def write_loop(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.queue and not self.closed:
                        self.cond.wait()
                    if not self.queue and self.closed:
                        break
                    due, _seq, data = self.queue[0]
                    wait = due - time.perf_counter()
                    if wait > 0:
                        self.cond.wait(wait)
                        continue
                    heapq.heappop(self.queue)
                self.target.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(self.target)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Relay:
    def __init__(
        self,
        *,
        upstream: tuple[str, int] | None = None,
        upstream_unix: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        if (upstream is None) == (upstream_unix is None):
            raise ValueError("give exactly one of upstream and upstream_unix")
        self.upstream, self.upstream_unix, self.delay_s = upstream, upstream_unix, delay_s
        self.round_trips = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._running = False

    def _connect_upstream(self) -> socket.socket:
        if self.upstream_unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream_unix)
        else:
            sock = socket.create_connection(self.upstream)  # type: ignore[arg-type]
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def start(self) -> Relay:
        self._running = True
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            state = {"client_spoke": False}

            def client_chunk(state: dict = state) -> None:
                state["client_spoke"] = True

            def server_chunk(state: dict = state) -> None:
                if state["client_spoke"]:
                    state["client_spoke"] = False
                    with self._lock:
                        self.round_trips += 1

            up = _Direction(client, server, self.delay_s, client_chunk)
            down = _Direction(server, client, self.delay_s, server_chunk)
            for direction in (up, down):
                threading.Thread(target=direction.read_loop, daemon=True).start()
                threading.Thread(target=direction.write_loop, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.round_trips = 0
            self.connections = 0

    @contextmanager
    def counting(self) -> Iterator[dict[str, int]]:
        """The round trips (and new connections) made while the block runs."""
        with self._lock:
            trips, conns = self.round_trips, self.connections
        result: dict[str, int] = {}
        try:
            yield result
        finally:
            time.sleep(0.002 + 2 * self.delay_s)  # let the last answer reach the counter
            with self._lock:
                result["round_trips"] = self.round_trips - trips
                result["connections"] = self.connections - conns

    def stop(self) -> None:
        self._running = False
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass
