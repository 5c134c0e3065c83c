"""The HTTP side of the dashboards: a threaded server in a daemon thread, a fixed whitelist of
page files, token-checked and size-limited POSTs, and a server-sent-events broker.

Nothing here runs in the training thread except :meth:`Broker.publish`, which only appends to
per-client bounded queues: a slow or vanished browser never blocks training.
"""

from __future__ import annotations

import collections
import hmac
import json
import math
import secrets
import threading
import time
import warnings
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 4096
"""Largest accepted POST body in bytes (413 above)."""

QUEUE_SIZE = 256
"""Events kept per client; when a client falls behind, its oldest events are dropped."""

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class HTTPError(Exception):
    """An error answer: status code and a one-line message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def jsonable(v):
    """Floats that JSON can carry: NaN/Inf become None; NumPy scalars become Python ones."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def page_file(name: str) -> bytes:
    """A file of the page (``static/<name>``), read from the installed package."""
    return resources.files("filterbank.train.dashboard").joinpath("static", name).read_bytes()


class _Client:
    def __init__(self, size: int):
        self.events: collections.deque[bytes] = collections.deque(maxlen=size)
        self.ready = threading.Event()
        self.dropped = 0


class Broker:
    """Fans server-sent events out to the connected clients, each with a bounded queue."""

    def __init__(self, queue_size: int = QUEUE_SIZE):
        self.queue_size = queue_size
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self.on_connect = None  # called (in the server thread) with the new client

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    @staticmethod
    def encode(kind: str, data: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps(jsonable(data), allow_nan=False)}\n\n".encode()

    def publish(self, kind: str, data: dict) -> None:
        with self._lock:
            if not self._clients:
                return
            clients = list(self._clients)
        message = self.encode(kind, data)
        for c in clients:
            if len(c.events) == c.events.maxlen:
                c.dropped += 1  # the deque drops the oldest on append
            c.events.append(message)
            c.ready.set()

    def send_to(self, client: _Client, kind: str, data: dict) -> None:
        client.events.append(self.encode(kind, data))
        client.ready.set()

    def add(self) -> _Client:
        c = _Client(self.queue_size)
        with self._lock:
            self._clients.add(c)
        return c

    def remove(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def close(self) -> None:
        self.closed.set()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.ready.set()


class Handler(BaseHTTPRequestHandler):
    """Routes: GET of the whitelisted page files, GET /events (if the app has a broker), POSTs
    to the app's ``post_routes`` (token and size checked here, handled by the app)."""

    server_version = "filterbank-dashboard"
    timeout = 30  # a client that stops reading fails its writes instead of hanging a thread
    app: App  # set on the subclass made per server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # no line per request on the terminal

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(jsonable(data)).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self):  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        if path == "/events" and self.app.broker is not None:
            return self._events()
        name = self.app.pages.get(path)
        if name is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no such page: {path[:100]}")
        body = page_file(name)
        ctype = _TYPES[name[name.rfind("."):]]
        self._send(HTTPStatus.OK, body, ctype)

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        parts = urlsplit(self.path)
        route = self.app.post_routes.get(parts.path)
        if route is None:
            return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {parts.path[:100]}")
        token = (parse_qs(parts.query).get("token") or [""])[0] \
            or self.headers.get("X-Token", "")
        if not hmac.compare_digest(token.encode(), self.app.token.encode()):
            return self._error(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL "
                               "printed in the terminal (it ends with ?token=...)")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length < 0:
            return self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > self.app.max_body:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes; at most {self.app.max_body}")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
        try:
            status, answer = route(body)
        except HTTPError as e:
            return self._error(e.status, e.message)
        self._json(status, answer)

    def _events(self) -> None:
        broker = self.app.broker
        # ?snapshot=1: only the state so far, then the stream ends (a page that must finish
        # loading, e.g. a headless browser's --dump-dom, which waits for open requests)
        once = "snapshot" in parse_qs(urlsplit(self.path).query)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        client = broker.add()
        self.app.sse_threads.add(threading.current_thread())
        try:
            if broker.on_connect is not None:
                broker.on_connect(client)
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()
            if broker.closed.is_set():
                client.ready.set()
            while True:
                if not client.ready.wait(15.0):
                    self.wfile.write(b": keep-alive\n\n")  # notices a vanished client
                    self.wfile.flush()
                    continue
                client.ready.clear()
                while client.events:  # the last events (end of training) go out too
                    self.wfile.write(client.events.popleft())
                self.wfile.flush()
                if broker.closed.is_set() or once:
                    break
        except (OSError, ValueError):
            pass  # the client went away (broken pipe, reset, timeout)
        finally:
            broker.remove(client)
            self.app.sse_threads.discard(threading.current_thread())
            self.close_connection = True


class App:
    """One server: its page files, POST routes, token and (optionally) event broker."""

    def __init__(self, pages: dict[str, str], post_routes: dict, broker: Broker | None = None,
                 max_body: int = MAX_BODY):
        self.pages = pages
        self.post_routes = post_routes
        self.broker = broker
        self.max_body = max_body
        self.token = secrets.token_urlsafe(24)
        self.sse_threads: set[threading.Thread] = set()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def bind(self, host: str, port: int, where: str) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"{where}: port must be an int in 0..65535 (0: a free one), got "
                             f"{port!r}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(f"{where}: serving on {host!r} lets other machines see the page; the "
                          f"controls still need the token", RuntimeWarning, stacklevel=3)
        handler = type("AppHandler", (Handler,), {"app": self})
        httpd = ThreadingHTTPServer((host, port), handler)
        httpd.daemon_threads = True
        self.httpd = httpd

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/?token={self.token}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval":
                                       0.1}, name="filterbank-dashboard", daemon=True)
        self.thread.start()

    def close(self, wait: float = 2.0) -> None:
        """Stop serving, end the event streams, free the port. A stream stuck writing to a
        client that stopped reading is given ``wait`` seconds in all (its daemon thread ends
        at its socket's timeout)."""
        if self.httpd is None:
            return
        if self.broker is not None:
            self.broker.close()
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join()
        deadline = time.monotonic() + wait
        for t in list(self.sse_threads):
            t.join(max(0.0, deadline - time.monotonic()))
        self.httpd.server_close()
        self.httpd = None
        self.thread = None
