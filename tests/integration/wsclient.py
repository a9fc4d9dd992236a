"""A small RFC 6455 WebSocket client (and plain HTTP client) for black-box tests.

Standard library only. The socket is always non-blocking and every wait goes
through poll() with a deadline, so nothing here can hang: each call takes a
timeout (seconds) and raises Timeout when it runs out.

    c = WSClient.connect("127.0.0.1", port, "/api/chat/realtime/<guid>?tk=...")
    welcome = c.recv_json()
    c.send_json({"type": "offer", "data": {}})
    info = c.recv_close()          # -> CloseInfo(code, reason, messages, frame)

A refused handshake raises HandshakeError with .status, .headers, .body.
"""

import base64
import errno
import hashlib
import json
import os
import select
import socket
import struct
import time

DEFAULT_TIMEOUT = 10.0
GUID_WS = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

MAX_HEADER_BYTES = 256 * 1024  # what we accept from a server before giving up


class Timeout(AssertionError):
    """A wait ran out of time (an AssertionError, so pytest shows it as a failure)."""


class WSClosed(Exception):
    """The connection ended while a message was expected.

    code/reason come from the server's close frame; code is None when the
    connection ended without one (EOF or reset)."""

    def __init__(self, code, reason, how):
        super().__init__(f"connection closed: code={code} reason={reason!r} ({how})")
        self.code = code
        self.reason = reason
        self.how = how  # "close-frame", "eof" or "reset"


class HandshakeError(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, response):
        super().__init__(f"handshake refused: {response.status} {response.body[:200]!r}")
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self.body = response.body


class HTTPResponse:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (repeated headers joined with ", ")
        self.body = body
        self.raw_head = raw_head

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<HTTPResponse {self.status} {self.headers!r} {self.body[:100]!r}>"


class CloseInfo:
    """How a connection ended: code/reason of the close frame (None without one),
    the data messages received before it, and how it ended."""

    def __init__(self, code, reason, messages, how):
        self.code = code
        self.reason = reason
        self.messages = messages
        self.how = how

    def __repr__(self):
        return f"<CloseInfo code={self.code} reason={self.reason!r} how={self.how} messages={len(self.messages)}>"


def _deadline(timeout):
    return time.monotonic() + (DEFAULT_TIMEOUT if timeout is None else timeout)


def _remaining(deadline):
    return deadline - time.monotonic()


def _mask(payload, key):
    if not payload or key == b"\0\0\0\0":
        return bytes(payload)
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


class _Conn:
    """A non-blocking socket with a read buffer and deadline-bound I/O."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def _poll(self, events, deadline, what):
        p = select.poll()
        p.register(self.sock.fileno(), events)
        while True:
            left = _remaining(deadline)
            if left <= 0:
                raise Timeout(f"timed out waiting to {what}")
            if p.poll(max(1, int(left * 1000))):
                return

    def fill(self, deadline, what="read"):
        """Reads at least one more byte into buf; False on EOF/reset."""
        if self.eof:
            return False
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                self._poll(select.POLLIN, deadline, what)
                continue
            except (ConnectionResetError, ConnectionAbortedError):
                self.eof = self.reset = True
                return False
            if not data:
                self.eof = True
                return False
            self.buf += data
            return True

    def readable_now(self):
        """True if data (or EOF) is waiting, without blocking."""
        if self.buf:
            return True
        p = select.poll()
        p.register(self.sock.fileno(), select.POLLIN)
        return bool(p.poll(0))

    def sendall(self, data, deadline):
        view = memoryview(data)
        while view:
            try:
                n = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                self._poll(select.POLLOUT, deadline, "send")
                continue
            view = view[n:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _open_socket(host, port, deadline, rcvbuf=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    err = sock.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        sock.close()
        raise ConnectionRefusedError(err, os.strerror(err))
    conn = _Conn(sock)
    if err == errno.EINPROGRESS:
        try:
            conn._poll(select.POLLOUT, deadline, "connect")
        except Timeout:
            sock.close()
            raise
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            raise ConnectionRefusedError(err, os.strerror(err))
    return conn


def _read_head(conn, deadline):
    """Reads an HTTP response head; returns (status, reason, headers, raw_head)."""
    while True:
        end = conn.buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(conn.buf) > MAX_HEADER_BYTES:
            raise AssertionError("HTTP response head too large")
        if not conn.fill(deadline, "read the HTTP response head"):
            raise WSClosed(None, None, "reset" if conn.reset else "eof")
    raw = bytes(conn.buf[:end])
    del conn.buf[: end + 4]
    lines = raw.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise AssertionError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise AssertionError(f"bad header line {line!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return status, reason, headers, raw


def _read_body(conn, headers, deadline, method="GET", status=200):
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(conn.buf) < n:
            if not conn.fill(deadline, "read the HTTP body"):
                break
        body = bytes(conn.buf[:n])
        del conn.buf[:n]
        return body
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            while b"\r\n" not in conn.buf:
                if not conn.fill(deadline, "read a chunk size"):
                    return bytes(body)
            line, _, _ = bytes(conn.buf).partition(b"\r\n")
            del conn.buf[: len(line) + 2]
            size = int(line.split(b";")[0].strip() or b"0", 16)
            while len(conn.buf) < size + 2:
                if not conn.fill(deadline, "read a chunk"):
                    return bytes(body + conn.buf)
            body += conn.buf[:size]
            del conn.buf[: size + 2]
            if size == 0:
                return bytes(body)
    # No length: up to EOF.
    while conn.fill(deadline, "read the HTTP body up to EOF"):
        if len(conn.buf) > 64 * 1024 * 1024:
            raise AssertionError("HTTP body too large")
    body = bytes(conn.buf)
    conn.buf.clear()
    return body


def _header_block(headers):
    out = []
    if isinstance(headers, dict):
        headers = list(headers.items())
    for name, value in headers or []:
        if value is None:
            continue
        out.append(f"{name}: {value}\r\n")
    return "".join(out)


def http_request(host, port, method, path, headers=None, body=b"", timeout=None):
    """Sends one HTTP/1.1 request (Connection: close) and returns an HTTPResponse."""
    deadline = _deadline(timeout)
    conn = _open_socket(host, port, deadline)
    try:
        base = {"Host": f"{host}:{port}", "Connection": "close"}
        if body:
            base["Content-Length"] = str(len(body))
        merged = dict(base)
        for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
            merged = {kk: vv for kk, vv in merged.items() if kk.lower() != k.lower()}
            merged[k] = v
        req = f"{method} {path} HTTP/1.1\r\n{_header_block(merged)}\r\n".encode("utf-8") + body
        conn.sendall(req, deadline)
        status, reason, hdrs, raw = _read_head(conn, deadline)
        resp_body = _read_body(conn, hdrs, deadline, method, status)
        return HTTPResponse(status, reason, hdrs, resp_body, raw)
    finally:
        conn.close()


class WSClient:
    """One WebSocket connection. Not thread-safe, except that one thread may
    send (send_* methods) while another receives."""

    registry = None  # when a list, every opened client is appended (for cleanup)

    def __init__(self, conn, response, auto_pong=True, auto_close=True):
        self._c = conn
        self.response = response  # the 101 HTTPResponse
        self.auto_pong = auto_pong
        self.auto_close = auto_close  # answer the server's close frame at once
        self.pings = 0  # pings received
        self.pongs = 0
        self.last_pong = None  # payload of the last pong received
        self.close_code = None
        self.close_reason = None
        self.closed = False  # a close frame was received or the connection ended
        self._close_sent = False
        self._frags = None  # (opcode, [payloads]) of a fragmented message being received

    # -- opening -----------------------------------------------------------

    @classmethod
    def connect(cls, host, port, path, headers=None, timeout=None, auto_pong=True, rcvbuf=None,
                key=None, replace_headers=None, auto_close=True):
        """Opens a WebSocket. headers: extra request headers (dict or list of pairs).
        auto_close=False: a close frame from the server is not answered (send_frame does it).
        replace_headers: overrides/removes (value None) the standard handshake headers.
        rcvbuf: SO_RCVBUF set before connecting (a small one makes a slow reader)."""
        deadline = _deadline(timeout)
        conn = _open_socket(host, port, deadline, rcvbuf)
        try:
            key = key or base64.b64encode(os.urandom(16)).decode()
            std = {
                "Host": f"{host}:{port}",
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            }
            for k, v in (replace_headers or {}).items():
                std = {kk: vv for kk, vv in std.items() if kk.lower() != k.lower()}
                std[k] = v
            req = f"GET {path} HTTP/1.1\r\n{_header_block(std)}{_header_block(headers)}\r\n"
            conn.sendall(req.encode("utf-8"), deadline)
            status, reason, hdrs, raw = _read_head(conn, deadline)
            if status != 101:
                body = _read_body(conn, hdrs, deadline, "GET", status)
                raise HandshakeError(HTTPResponse(status, reason, hdrs, body, raw))
            expect = base64.b64encode(hashlib.sha1(key.encode() + GUID_WS).digest()).decode()
            if hdrs.get("sec-websocket-accept") != expect:
                raise AssertionError(f"bad Sec-WebSocket-Accept {hdrs.get('sec-websocket-accept')!r}")
            if hdrs.get("upgrade", "").lower() != "websocket":
                raise AssertionError(f"bad Upgrade header in 101: {hdrs.get('upgrade')!r}")
            client = cls(conn, HTTPResponse(status, reason, hdrs, b"", raw), auto_pong, auto_close)
            if cls.registry is not None:
                cls.registry.append(client)
            return client
        except BaseException:
            conn.close()
            raise

    # -- sending -----------------------------------------------------------

    @staticmethod
    def build_frame(opcode, payload, fin=True, rsv=0, mask=True, mask_key=None, length=None):
        """Encodes one frame. length overrides the declared payload length."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        n = len(payload) if length is None else length
        head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
        mbit = 0x80 if mask else 0
        if n < 126:
            head.append(mbit | n)
        elif n < 65536:
            head.append(mbit | 126)
            head += struct.pack("!H", n)
        else:
            head.append(mbit | 127)
            head += struct.pack("!Q", n)
        if mask:
            mask_key = os.urandom(4) if mask_key is None else mask_key
            head += mask_key
            payload = _mask(payload, mask_key)
        return bytes(head) + bytes(payload)

    def send_raw(self, data, timeout=None):
        self._c.sendall(data, _deadline(timeout))

    def send_frame(self, opcode, payload, fin=True, rsv=0, mask=True, timeout=None, mask_key=None):
        self.send_raw(self.build_frame(opcode, payload, fin, rsv, mask, mask_key), timeout)

    def send_text(self, text, timeout=None):
        self.send_frame(OP_TEXT, text, timeout=timeout)

    def send_binary(self, data, timeout=None):
        self.send_frame(OP_BINARY, data, timeout=timeout)

    def send_json(self, obj, timeout=None):
        self.send_text(json.dumps(obj, separators=(",", ":")), timeout)

    def send_many_json(self, objs, timeout=None):
        """Sends many messages with one write (back to back)."""
        data = b"".join(self.build_frame(OP_TEXT, json.dumps(o, separators=(",", ":"))) for o in objs)
        self.send_raw(data, timeout)

    def send_fragmented(self, payload, sizes, opcode=OP_TEXT, timeout=None, interleave_ping=False):
        """Sends payload as a fragmented message cut in pieces of the given sizes
        (the remainder, if any, goes into the last fragment)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        pieces, off = [], 0
        for s in sizes:
            pieces.append(payload[off:off + s])
            off += s
        if off < len(payload):
            pieces.append(payload[off:])
        data = bytearray()
        for i, piece in enumerate(pieces):
            op = opcode if i == 0 else OP_CONT
            data += self.build_frame(op, piece, fin=(i == len(pieces) - 1))
            if interleave_ping and i < len(pieces) - 1:
                data += self.build_frame(OP_PING, b"mid")
        self.send_raw(bytes(data), timeout)

    def ping(self, payload=b"", timeout=None):
        self.send_frame(OP_PING, payload, timeout=timeout)

    # -- receiving ---------------------------------------------------------

    def _next_frame(self, deadline):
        """Returns (fin, rsv, opcode, payload); raises WSClosed at EOF."""
        c = self._c
        while True:
            b = c.buf
            if len(b) >= 2:
                fin = bool(b[0] & 0x80)
                rsv = (b[0] >> 4) & 7
                opcode = b[0] & 0x0F
                masked = bool(b[1] & 0x80)
                n = b[1] & 0x7F
                off = 2
                need = 2
                if n == 126:
                    need = 4
                elif n == 127:
                    need = 10
                if len(b) >= need:
                    if n == 126:
                        n = struct.unpack("!H", b[2:4])[0]
                        off = 4
                    elif n == 127:
                        n = struct.unpack("!Q", b[2:10])[0]
                        off = 10
                    if masked:
                        raise AssertionError("server sent a masked frame (RFC 6455 5.1)")
                    if len(b) >= off + n:
                        payload = bytes(b[off:off + n])
                        del b[:off + n]
                        return fin, rsv, opcode, payload
            if not c.fill(deadline, "receive a frame"):
                self.closed = True
                raise WSClosed(None, None, "reset" if c.reset else "eof")

    def recv_message(self, timeout=None):
        """Returns the next data message as (opcode, bytes), answering pings on the way.
        Raises WSClosed when a close frame arrives or the connection ends, Timeout on timeout."""
        if self.closed and not self._c.buf:
            raise WSClosed(self.close_code, self.close_reason, "already closed")
        deadline = _deadline(timeout)
        while True:
            fin, rsv, opcode, payload = self._next_frame(deadline)
            if rsv:
                raise AssertionError(f"server set RSV bits {rsv}")
            if opcode == OP_PING:
                self.pings += 1
                if self.auto_pong and not self._close_sent:
                    try:
                        self.send_frame(OP_PONG, payload, timeout=_remaining(deadline) + 1)
                    except OSError:
                        pass
                continue
            if opcode == OP_PONG:
                self.pongs += 1
                self.last_pong = payload
                continue
            if opcode == OP_CLOSE:
                self.closed = True
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                else:
                    self.close_code, self.close_reason = 1005, ""
                if not self.auto_close:
                    raise WSClosed(self.close_code, self.close_reason, "close-frame")
                if not self._close_sent:
                    self._close_sent = True
                    try:
                        self.send_frame(OP_CLOSE, payload[:2], timeout=2)
                    except (OSError, Timeout):
                        pass
                try:  # our side is done: send FIN, keep reading until the server closes
                    self._c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                raise WSClosed(self.close_code, self.close_reason, "close-frame")
            if opcode in (OP_TEXT, OP_BINARY):
                if self._frags is not None:
                    raise AssertionError("server started a new message inside a fragmented one")
                if fin:
                    return opcode, payload
                self._frags = (opcode, [payload])
                continue
            if opcode == OP_CONT:
                if self._frags is None:
                    raise AssertionError("server sent a continuation frame out of a message")
                self._frags[1].append(payload)
                if fin:
                    op, parts = self._frags
                    self._frags = None
                    return op, b"".join(parts)
                continue
            raise AssertionError(f"server sent reserved opcode {opcode:#x}")

    def recv_text(self, timeout=None):
        opcode, payload = self.recv_message(timeout)
        if opcode != OP_TEXT:
            raise AssertionError(f"expected a text frame, got opcode {opcode} {payload[:100]!r}")
        return payload.decode("utf-8")

    def recv_json(self, timeout=None):
        """The next packet, parsed."""
        text = self.recv_text(timeout)
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError(f"server sent non-JSON text {text[:200]!r}")

    def recv_close(self, timeout=None, keep_messages=True):
        """Reads until the connection ends; returns CloseInfo with the messages seen before."""
        deadline = _deadline(timeout)
        messages = []
        while True:
            try:
                opcode, payload = self.recv_message(max(0.0, _remaining(deadline)))
            except WSClosed as e:
                self._c.close()
                return CloseInfo(e.code, e.reason, messages, e.how)
            if keep_messages:
                messages.append(payload.decode("utf-8", "replace") if opcode == OP_TEXT else payload)

    def recv_end(self, timeout=None):
        """Sends a FIN (our side is done, as a browser does after its close frame), then
        reads (and drops) until the connection ends; returns "eof" (the server closed:
        a FIN) or "reset"."""
        deadline = _deadline(timeout)
        try:
            self._c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._c.buf.clear()
        while self._c.fill(deadline, "read to the end"):
            self._c.buf.clear()
        return "reset" if self._c.reset else "eof"

    def pending(self):
        """True when something (data or EOF) is waiting to be read."""
        return self._c.readable_now()

    # -- closing -----------------------------------------------------------

    def close(self, code=1000, reason="", timeout=5.0, payload=None):
        """Closing handshake (bounded); returns the CloseInfo. payload: the close
        frame's raw payload instead of code and reason (to send a malformed one)."""
        if not self._close_sent and not self.closed:
            self._close_sent = True
            try:
                if payload is None:
                    payload = struct.pack("!H", code) + reason.encode() if code is not None else b""
                self.send_frame(OP_CLOSE, payload, timeout=timeout)
            except (OSError, Timeout):
                pass
        try:
            return self.recv_close(timeout, keep_messages=True)
        except (Timeout, AssertionError):
            return None
        finally:
            self._c.close()

    def abort(self):
        """Drops the TCP connection without a closing handshake."""
        self.closed = True
        self._c.close()

    def fileno(self):
        return self._c.sock.fileno()
