"""lpwire - a minimal luaparallel client written from docs/protocol.md alone.

Debian's python3-zmq and python3-msgpack, nothing else. Invariant 6 of
DESIGN.md: this file must be writable from docs/protocol.md (and
docs/scheduling.md for the task flags) without reading src/. Every rule it
follows is quoted from the doc in a comment, so that a disagreement with the
code points at a sentence.

    c = Client.from_file("/path/lp-client.json")
    h = c.send("mux", "execute_request", {"code": "1+1"}, targets=[0])
    r = c.reply_to(h["msg_id"], "mux", timeout=5)
    r.content["values"]      # [2]
"""

import collections
import datetime
import hashlib
import hmac
import json
import os
import struct
import time
import uuid as _uuid

import msgpack
import zmq

DELIM = b"<LPMSG>"
VERSION = "1.0"
OOB_THRESHOLD = 64 * 1024          # "strings over 64 KiB"
SEQ_THRESHOLD = 4096               # "a Lua sequence of more than 4096 elements"
PIECE_MAX = 1024 * 1024            # "each at most 1 MiB"
FRAME_CAP = 2 * 1024 * 1024        # ZMQ_MAXMSGSIZE: "2 MiB on the data channels"
TABLE_THRESHOLD = 64 * 1024        # "every array or map inside the map whose msgpack
                                   #  ... is longer than 64 KiB"
MAP_THRESHOLD = 1024 * 1024        # "and the map itself when its msgpack is longer than 1 MiB"
GUARD_SIZE = 65536                 # "the last 65,536 ids"

# ext type 1 dtypes: "1 = float64, 2 = float32, 3 = int64, 4 = int32, 5 = uint8"
DTYPES = {1: ("d", 8), 2: ("f", 4), 3: ("q", 8), 4: ("i", 4), 5: ("B", 1)}
FLOAT64, FLOAT32, INT64, INT32, UINT8 = 1, 2, 3, 4, 5
FLAG_SEQUENCE = 1                  # ext 1 flags bit 0
FLAG_TEXT = 1                      # ext 2 flags bit 0


class ProtocolViolation(Exception):
    """Something the peer sent that the doc says it must not."""


# ---------------------------------------------------------------------------
# Values


class TypedArray:
    """ext type 1: a typed numeric array. `sequence` is flags bit 0 (the
    array stands for a plain Lua table of numbers)."""

    def __init__(self, dtype, values=None, data=None, sequence=False):
        if dtype not in DTYPES:
            raise ValueError("unknown dtype %r" % dtype)
        code, size = DTYPES[dtype]
        self.dtype = dtype
        self.sequence = bool(sequence)
        if data is None:
            values = list(values or [])
            data = struct.pack("<%d%s" % (len(values), code), *values)
        if len(data) % size:
            # "A typed array's element count is its byte length divided by
            #  the element size (a remainder is malformed)."
            raise ProtocolViolation("typed array of %d bytes, element size %d" % (len(data), size))
        self.data = bytes(data)

    def values(self):
        code, size = DTYPES[self.dtype]
        return list(struct.unpack("<%d%s" % (len(self.data) // size, code), self.data))

    def __len__(self):
        return len(self.data) // DTYPES[self.dtype][1]

    def __eq__(self, other):
        return (isinstance(other, TypedArray) and self.dtype == other.dtype
                and self.sequence == other.sequence and self.data == other.data)

    def __repr__(self):
        return "TypedArray(dtype=%d, n=%d, sequence=%s)" % (self.dtype, len(self), self.sequence)


def _ext_payload(dtype, flags, first, pieces):
    # "u8 dtype | u8 flags | u16 0 | u32 first | u32 pieces | u32 0 (big-endian)"
    return struct.pack(">BBHIII", dtype, flags, 0, first, pieces, 0)


def _add_oob(data, buffers):
    """Appends data to buffers in pieces of at most 1 MiB; returns (first, pieces)."""
    first = len(buffers)
    for off in range(0, len(data), PIECE_MAX):
        buffers.append(bytes(data[off:off + PIECE_MAX]))
    return first, len(buffers) - first


def to_wire(v, buffers, oob=True):
    """Python value -> object msgpack can pack, moving large data to buffers
    as the doc's senders do. TypedArray always goes out of band."""
    if isinstance(v, TypedArray):
        first, pieces = _add_oob(v.data, buffers)
        return msgpack.ExtType(1, _ext_payload(v.dtype, FLAG_SEQUENCE if v.sequence else 0, first, pieces))
    if isinstance(v, str):
        if oob and len(v.encode()) > OOB_THRESHOLD:
            first, pieces = _add_oob(v.encode(), buffers)
            return msgpack.ExtType(2, _ext_payload(0, FLAG_TEXT, first, pieces))
        return v
    if isinstance(v, (bytes, bytearray)):
        if oob and len(v) > OOB_THRESHOLD:
            first, pieces = _add_oob(v, buffers)
            return msgpack.ExtType(2, _ext_payload(0, 0, first, pieces))
        return bytes(v)
    if isinstance(v, (list, tuple)):
        if oob and len(v) > SEQ_THRESHOLD:
            # "all integers (sent as int64 with the sequence flag) or all
            #  floats (float64, sequence flag)"
            if all(type(x) is int for x in v):
                return to_wire(TypedArray(INT64, v, sequence=True), buffers)
            if all(type(x) is float for x in v):
                return to_wire(TypedArray(FLOAT64, v, sequence=True), buffers)
        return [to_wire(x, buffers, oob) for x in v]
    if isinstance(v, dict):
        return {to_wire(k, buffers, oob): to_wire(x, buffers, oob) for k, x in v.items()}
    return v


def _tables_out(v, buffers, depth):
    """Moves tables out of band (ext 3), innermost first: "every array or map
    inside the map whose msgpack (with its own large values already moved
    out) is longer than 64 KiB, and the map itself when its msgpack is
    longer than 1 MiB"; "a table's buffers come after those of the values
    inside it"."""
    if isinstance(v, list):
        v = [_tables_out(x, buffers, depth + 1) for x in v]
    elif isinstance(v, dict):
        v = {k: _tables_out(x, buffers, depth + 1) for k, x in v.items()}
    else:
        return v
    packed = msgpack.packb(v, use_bin_type=True)
    if len(packed) > (TABLE_THRESHOLD if depth > 0 else MAP_THRESHOLD):
        first, pieces = _add_oob(packed, buffers)
        return msgpack.ExtType(3, _ext_payload(0, 0, first, pieces))
    return v


def pack(obj, buffers, oob=True):
    wire = to_wire(obj, buffers, oob)
    if oob:
        wire = _tables_out(wire, buffers, 0)
    return msgpack.packb(wire, use_bin_type=True)


def unpack(frame, buffers, seq_as_list=False):
    """One msgpack object, nothing after it; ext 1/2 resolved from buffers.
    A typed array with the sequence flag becomes a list when seq_as_list."""

    def ext_hook(code, payload):
        if code not in (1, 2, 3):
            return msgpack.ExtType(code, payload)
        if len(payload) != 16:
            raise ProtocolViolation("ext %d payload of %d bytes, not 16" % (code, len(payload)))
        dtype, flags, z16, first, pieces, z32 = struct.unpack(">BBHIII", payload)
        if z16 or z32 or flags & ~1:
            raise ProtocolViolation("ext %d: reserved bits set" % code)
        if first + pieces > len(buffers):
            raise ProtocolViolation("ext %d refers to buffers %d..%d, message has %d"
                                    % (code, first, first + pieces - 1, len(buffers)))
        for b in buffers[first:first + pieces]:
            if len(b) > PIECE_MAX:
                raise ProtocolViolation("buffer piece of %d bytes > 1 MiB" % len(b))
        data = b"".join(buffers[first:first + pieces])
        if code == 3:
            # "the data is the msgpack of one array or map ... The receiver
            #  decodes it exactly as a frame"; "pieces = 0" is malformed
            if dtype or flags or not data:
                raise ProtocolViolation("ext 3 with dtype %d, flags %d, %d bytes"
                                        % (dtype, flags, len(data)))
            if not (0x80 <= data[0] <= 0x9f or 0xdc <= data[0] <= 0xdf):
                raise ProtocolViolation("ext 3 holds 0x%02x, not an array or map" % data[0])
            return unpack(data, buffers, seq_as_list)
        if code == 2:
            if dtype != 0:
                raise ProtocolViolation("ext 2 with dtype %d" % dtype)
            return data.decode() if flags & FLAG_TEXT else data
        ta = TypedArray(dtype, data=data, sequence=flags & FLAG_SEQUENCE)
        return ta.values() if (seq_as_list and ta.sequence) else ta

    up = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=ext_hook,
                          max_buffer_size=0)
    up.feed(frame)
    try:
        obj = up.unpack()
    except msgpack.OutOfData:
        raise ProtocolViolation("truncated msgpack frame")
    try:
        up.unpack()
    except msgpack.OutOfData:
        return obj
    raise ProtocolViolation("bytes after the msgpack object")


# ---------------------------------------------------------------------------
# Messages


def iso_now(offset_sec=0.0):
    # "ISO 8601 UTC with microseconds, 2026-11-29T06:27:42.123456Z"
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_sec)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_date(s):
    """Accepts 0 to 9 fraction digits and Z or +00:00."""
    if s.endswith("Z"):
        s = s[:-1]
    elif s.endswith("+00:00"):
        s = s[:-6]
    else:
        raise ValueError("not UTC: %r" % s)
    if "." in s:
        main, frac = s.split(".")
        frac = (frac + "000000")[:6]
    else:
        main, frac = s, "000000"
    t = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    return t.replace(microsecond=int(frac), tzinfo=datetime.timezone.utc)


def new_id():
    return _uuid.uuid4().hex       # 32 lowercase hex characters


def poly1305(key, msg):
    """Poly1305 one-time authenticator (RFC 8439): 16-byte tag."""
    r = int.from_bytes(key[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:32], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def buffer_tag(key, nonce, index, data):
    """Tag of buffer index: Poly1305 under BLAKE2b(nonce + index, key,
    person "lp-buffer-key")."""
    k = hashlib.blake2b(nonce + struct.pack(">Q", index), key=key, digest_size=32,
                        person=b"lp-buffer-key").digest()
    return poly1305(k, bytes(data))


def sign(key, frames, nonce=None):
    """The signature frame for frames = [header, parent, metadata, content,
    buffers...]: keyed BLAKE2b-256 over the four maps and, when there are
    buffers, the digest block (nonce + one Poly1305 tag per buffer), each
    as its length (8 bytes big-endian) then its bytes; the frame is the
    signature's 64 lowercase hex characters, then the block's hex."""
    maps, bufs = frames[:4], frames[4:]
    items = [bytes(f) for f in maps]
    block = b""
    if bufs:
        nonce = nonce if nonce is not None else os.urandom(16)
        block = nonce + b"".join(buffer_tag(key, nonce, i, b) for i, b in enumerate(bufs))
        items.append(block)
    h = hashlib.blake2b(key=key, digest_size=32)
    for f in items:
        h.update(struct.pack(">Q", len(f)))
        h.update(f)
    return (h.hexdigest() + block.hex()).encode()


def verify(key, sig, frames):
    """True when sig is the signature frame of frames (see sign)."""
    sig = bytes(sig)
    nonce = None
    if len(frames) > 4:
        if len(sig) != 64 + 32 + 32 * (len(frames) - 4):
            return False
        try:
            nonce = bytes.fromhex(sig[64:96].decode())
        except ValueError:
            return False
    return hmac.compare_digest(sig, sign(key, frames, nonce))


class Message:
    __slots__ = ("routing", "header", "parent", "metadata", "content", "buffers",
                 "frames", "channel", "parent_raw", "header_raw")

    def __repr__(self):
        return "<%s %s parent=%s meta=%s content=%s>" % (
            self.channel, self.header.get("msg_type"), (self.parent or {}).get("msg_id"),
            self.metadata, self.content)

    @property
    def msg_type(self):
        return self.header.get("msg_type")

    @property
    def parent_id(self):
        return (self.parent or {}).get("msg_id")


# ---------------------------------------------------------------------------
# Client

CHANNELS = ("registration", "mux", "control", "task", "notification", "iopub")


class Client:
    def __init__(self, conn, identity=None):
        self.conn = conn
        if conn.get("signature_scheme") != "blake2b-256":
            raise ProtocolViolation("signature_scheme %r" % conn.get("signature_scheme"))
        self.key = bytes.fromhex(conn["key"])
        if len(self.key) != 32:
            raise ProtocolViolation("key of %d bytes" % len(self.key))
        self.session = new_id()
        self.username = os.environ.get("USER", "lpwire")
        self.ctx = zmq.Context()
        self.sock = {}
        self.stash = {c: collections.deque() for c in CHANNELS}
        self.seen = collections.OrderedDict()       # id guard, last 65,536
        self.sent = collections.OrderedDict()       # msg_id -> header frame sent
        self.dropped = collections.Counter()
        self.poller = zmq.Poller()
        ep = conn["endpoints"]
        for name in ("registration", "mux", "control", "task"):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.MAXMSGSIZE, FRAME_CAP)
            if identity:
                s.setsockopt(zmq.IDENTITY, (identity + "-" + name).encode())
            s.connect(ep[name])
            self.sock[name] = s
        for name in ("notification", "iopub"):
            s = self.ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SUBSCRIBE, b"")
            s.connect(ep[name])
            self.sock[name] = s
        self.chan_of = {s: n for n, s in self.sock.items()}
        for s in self.sock.values():
            self.poller.register(s, zmq.POLLIN)

    @classmethod
    def from_file(cls, path, **kw):
        with open(path) as f:
            conn = json.load(f)
        if conn.get("kind") != "client":
            raise ProtocolViolation("not a client connection file: kind %r" % conn.get("kind"))
        return cls(conn, **kw)

    def close(self):
        for s in self.sock.values():
            s.close(0)
        self.ctx.term()

    # -- sending ------------------------------------------------------------

    def header(self, msg_type, targets=None, date=None, msg_id=None, **extra):
        h = {"msg_id": msg_id or new_id(), "msg_type": msg_type, "session": self.session,
             "username": self.username, "date": date or iso_now(), "version": VERSION}
        if targets is not None:
            h["targets"] = list(targets)
        h.update(extra)
        return h

    def build(self, header, content, parent=None, metadata=None, buffers=None,
              raw_content=None, oob=True, parent_raw=None):
        """The frames after the routing frames, signed. raw_content replaces
        the packed content frame (to send something undecodable);
        parent_raw is a parent_header frame copied verbatim."""
        bufs = list(buffers or [])
        cframe = raw_content if raw_content is not None else pack(content, bufs, oob)
        frames = [msgpack.packb(header, use_bin_type=True),
                  parent_raw if parent_raw is not None else msgpack.packb(parent or {}, use_bin_type=True),
                  pack(metadata or {}, bufs, oob), cframe] + bufs
        return [DELIM, sign(self.key, frames)] + frames

    def send_frames(self, channel, frames):
        # "a DEALER sending to a ROUTER puts none [no routing frame]"
        try:
            mid = msgpack.unpackb(frames[2], raw=False).get("msg_id")
            self.sent[mid] = frames[2]
            while len(self.sent) > GUARD_SIZE:
                self.sent.popitem(last=False)
        except Exception:       # noqa: BLE001 - a deliberately broken header
            pass
        self.sock[channel].send_multipart(frames, copy=False)

    def send(self, channel, msg_type, content, targets=None, metadata=None,
             date=None, msg_id=None, raw_content=None, buffers=None, oob=True, **extra):
        """Sends a request; returns its header (a dict) with the frames sent in
        header['_frames'] (for replays)."""
        h = self.header(msg_type, targets=targets, date=date, msg_id=msg_id, **extra)
        frames = self.build(h, content, metadata=metadata, raw_content=raw_content,
                            buffers=buffers, oob=oob)
        self.send_frames(channel, frames)
        out = dict(h)
        out["_frames"] = frames
        return out

    # -- receiving ----------------------------------------------------------

    def _parse(self, channel, frames):
        try:
            i = frames.index(DELIM)
        except ValueError:
            self.dropped["no delimiter"] += 1
            return None
        routing, rest = frames[:i], frames[i + 1:]
        if len(rest) < 5:        # signature + 4 maps = 5; with delimiter 6
            self.dropped["short"] += 1
            return None
        sig, body = rest[0], rest[1:]
        if not verify(self.key, sig, body):
            self.dropped["signature"] += 1
            return None
        bufs = body[4:]
        m = Message()
        m.channel = channel
        m.routing = routing
        m.frames = frames
        m.buffers = bufs
        m.header = unpack(body[0], [])     # "header and parent_header never refer to buffers"
        mid = m.header.get("msg_id")
        if mid in self.seen:
            self.dropped["replay"] += 1
            return None
        m.parent = unpack(body[1], [])
        m.parent_raw = body[1]
        m.header_raw = body[0]
        m.metadata = unpack(body[2], bufs)
        m.content = unpack(body[3], bufs, seq_as_list=True)
        for f in (m.header, m.parent, m.metadata, m.content):
            if not isinstance(f, dict):
                raise ProtocolViolation("frame is not a map: %r" % (f,))
        self.seen[mid] = True
        while len(self.seen) > GUARD_SIZE:
            self.seen.popitem(last=False)
        return m

    def _pump(self, timeout_ms):
        """Reads everything ready (waiting up to timeout_ms for the first)."""
        got = 0
        for s, _ in self.poller.poll(max(0, int(timeout_ms))):
            ch = self.chan_of[s]
            while True:
                try:
                    frames = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                m = self._parse(ch, frames)
                if m is not None:
                    self.stash[ch].append(m)
                    got += 1
        return got

    def take(self, channel, pred=lambda m: True, timeout=5.0):
        """The first message on channel matching pred, waiting up to timeout
        seconds; None on timeout. Other messages stay stashed."""
        deadline = time.monotonic() + timeout
        while True:
            q = self.stash[channel]
            for i, m in enumerate(q):
                if pred(m):
                    del q[i]
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._pump(left * 1000)

    def take_all(self, channel, pred, n, timeout=5.0):
        """Up to n messages matching pred within timeout (fewer on timeout)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            m = self.take(channel, pred, max(0.0, deadline - time.monotonic()))
            if m is None:
                break
            out.append(m)
        return out

    def reply_to(self, msg_id, channel, timeout=5.0):
        """The reply whose parent_header.msg_id is msg_id ("A reply is matched
        by its parent_header.msg_id")."""
        return self.take(channel, lambda m: m.parent_id == msg_id, timeout)

    def replies_to(self, msg_id, channel, n, timeout=5.0):
        return self.take_all(channel, lambda m: m.parent_id == msg_id, n, timeout)

    def drain(self, channel, timeout=0.0):
        """Everything stashed or arriving on channel within timeout."""
        self._pump(timeout * 1000)
        out = list(self.stash[channel])
        self.stash[channel].clear()
        return out

    # -- conveniences -------------------------------------------------------

    def request(self, channel, msg_type, content, wait=10.0, **kw):
        """Sends and waits up to `wait` seconds for the reply (None on
        timeout); keyword arguments go to send (header fields included:
        `timeout` here is the task flag)."""
        h = self.send(channel, msg_type, content, **kw)
        return self.reply_to(h["msg_id"], channel, wait)

    def status(self, wait=5.0):
        return self.request("registration", "status_request", {}, wait=wait)

    def execute(self, engine, code, wait=10.0):
        r = self.request("mux", "execute_request", {"code": code}, targets=[engine], wait=wait)
        if r is None:
            raise TimeoutError("no reply to execute on engine %d" % engine)
        return r


# ---------------------------------------------------------------------------
# Engine side: enough of an engine to check the controller's half of the
# protocol (registration, hellos, heartbeat, forwarding, matching, retries).


class Engine(Client):
    """A fake engine speaking the engine connection file's endpoints."""

    def __init__(self, conn, uuid=None):
        if conn.get("kind") != "engine":
            raise ProtocolViolation("not an engine connection file: kind %r" % conn.get("kind"))
        self.conn = conn
        self.key = bytes.fromhex(conn["key"])
        self.session = new_id()
        self.username = os.environ.get("USER", "lpwire")
        # "ZMQ_IDENTITY to the engine's uuid: 32 lowercase hex characters"
        self.uuid = uuid or new_id()
        self.id = None
        self.ctx = zmq.Context()
        self.sock = {}
        self.stash = {c: collections.deque() for c in CHANNELS}
        self.seen = collections.OrderedDict()
        self.sent = collections.OrderedDict()
        self.dropped = collections.Counter()
        self.poller = zmq.Poller()
        ep = conn["endpoints"]
        for name in ("registration", "mux", "control", "task"):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.IDENTITY, self.uuid.encode())
            s.connect(ep[name])
            self.sock[name] = s
            self.poller.register(s, zmq.POLLIN)
        pub = self.ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(ep["iopub"])
        self.sock["iopub"] = pub
        self.chan_of = {s: n for n, s in self.sock.items()}
        self.pongs = 0
        # "echo"; "silent" (a stalled engine); "bogus" (pongs carrying a
        # sequence number the controller never sent)
        self.pong_mode = "echo"
        self.last_ping = None
        self.relogin = False
        self._stop = False
        import threading
        self._hb = threading.Thread(target=self._heartbeat, daemon=True)
        self._hb.start()

    def _heartbeat(self):
        """Echoes every 12-byte ping ("LPHB" + u64 big-endian) on hb_pong."""
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.conn["endpoints"]["hb_ping"])
        pong = self.ctx.socket(zmq.DEALER)
        pong.setsockopt(zmq.LINGER, 0)
        pong.setsockopt(zmq.IDENTITY, self.uuid.encode())
        pong.connect(self.conn["endpoints"]["hb_pong"])
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(pong, zmq.POLLIN)
        while not self._stop:
            for s, _ in poller.poll(100):
                frame = s.recv()
                if s is sub and len(frame) == 12 and frame[:4] == b"LPHB":
                    self.last_ping = struct.unpack(">Q", frame[4:])[0]
                    if self.pong_mode == "echo":
                        pong.send(frame)
                        self.pongs += 1
                    elif self.pong_mode == "bogus":
                        pong.send(b"LPHB" + struct.pack(">Q", self.last_ping + 1000003))
                elif s is pong and frame == b"LPRE":
                    self.relogin = True
        sub.close(0)
        pong.close(0)

    def register(self, want_id=-1, wait=5.0, hellos=("mux", "control", "task")):
        r = self.request("registration", "registration_request",
                         {"uuid": self.uuid, "id": want_id, "host": "lpwire",
                          "pid": os.getpid(), "user": self.username, "cwd": os.getcwd(),
                          "lua_version": "Lua 5.4 (lpwire)"}, wait=wait)
        if r is None or r.content.get("status") != "ok":
            raise ProtocolViolation("registration failed: %r" % (r,))
        self.id = r.content["id"]
        for ch in hellos:
            self.send(ch, "engine_hello", {"id": self.id})
        return r

    def unregister(self):
        self.send("registration", "unregistration_request", {"id": self.id})

    def next_request(self, channel, wait=5.0):
        return self.take(channel, lambda m: True, wait)

    def reply(self, request, reply_type, content, metadata=None, channel=None, date=None):
        """Answers request on its channel: same routing frame, parent_header
        the request's header bytes."""
        h = self.header(reply_type, date=date)
        md = {"engine": self.id, "status": content.get("status")}
        if content.get("status") == "error":
            md["ename"] = content.get("ename")
        md.update(metadata or {})
        frames = self.build(h, content, metadata=md, parent_raw=request.header_raw)
        self.send_frames(channel or request.channel, list(request.routing) + frames)
        out = dict(h)
        out["_frames"] = frames
        out["_metadata"] = md
        return out

    def stream(self, request, text):
        h = self.header("stream")
        frames = self.build(h, {"name": "stdout", "text": text}, metadata={"engine": self.id},
                            parent_raw=request.header_raw)
        self.sock["iopub"].send_multipart([("engine.%d.stream" % self.id).encode()] + frames)

    def close(self):
        self._stop = True
        self._hb.join(2)
        super().close()
