#!/usr/bin/python3
"""check_protocol.py LP_CLIENT_JSON - checks a running 4-engine cluster
against docs/protocol.md through lpwire.py (written from the doc alone).

Each check prints PASS or FAIL with what the doc says; the exit status is 1
when any check failed. Every wait has a deadline; nothing sleeps to
synchronise (waiting for an engine to start a request is done by reading its
iopub stream).
"""

import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpwire  # noqa: E402
import msgpack  # noqa: E402
from lpwire import TypedArray, FLOAT64, INT64, INT32  # noqa: E402

T = 10.0            # deadline for an answer that must come
QUIET = 1.5         # how long "no answer" is waited for
FAILS = []
TMP = tempfile.mkdtemp(prefix="lpproto.")


def say(*a):
    print(*a, flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(name, fn, c):
    t0 = time.monotonic()
    try:
        fn(c)
        say("PASS %-28s (%.2f s)" % (name, time.monotonic() - t0))
    except Exception as e:     # noqa: BLE001 - report and go on
        FAILS.append(name)
        say("FAIL %-28s %s" % (name, e))
        if not isinstance(e, AssertionError):
            traceback.print_exc()
    # Whatever a failed check left behind must not confuse the next one.
    for ch in ("mux", "task", "control", "registration"):
        c.drain(ch)


def ok_values(r, what):
    check(r is not None, "%s: no reply within %.0f s" % (what, T))
    check(r.content.get("status") == "ok",
          "%s: status %r ename %r evalue %r" % (what, r.content.get("status"),
                                                 r.content.get("ename"), r.content.get("evalue")))
    return r.content.get("values")


def err(r, what, ename):
    check(r is not None, "%s: no reply within %.0f s" % (what, T))
    check(r.content.get("status") == "error" and r.content.get("ename") == ename,
          "%s: expected error %s, got status %r ename %r evalue %r"
          % (what, ename, r.content.get("status"), r.content.get("ename"), r.content.get("evalue")))
    check(r.metadata.get("status") == "error",
          "%s: metadata status %r, doc: the same as content's" % (what, r.metadata.get("status")))
    check(r.metadata.get("ename") == ename,
          "%s: metadata ename %r, doc: an error reply's metadata also holds ename"
          % (what, r.metadata.get("ename")))
    return r


def flag_file(name):
    return os.path.join(TMP, name)


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wait_code(path, label):
    """Lua that prints `label` then waits (without burning CPU) for path."""
    return ("print(%s) io.stdout:flush() "
            "while true do local f = io.open(%s) if f then f:close() break end "
            "os.execute('sleep 0.02') end return %s"
            % (lua_str("started " + label), lua_str(path), lua_str("released " + label)))


def release(path):
    open(path, "w").close()


def wait_started(c, labels, timeout=T):
    """Waits for the iopub stream line 'started <label>' of each label;
    returns {label: stream message}."""
    want = set(labels)
    got = {}
    deadline = time.monotonic() + timeout
    while want and time.monotonic() < deadline:
        m = c.take("iopub", lambda m: m.msg_type == "stream", deadline - time.monotonic())
        if m is None:
            break
        for label in list(want):
            if ("started " + label) in m.content.get("text", ""):
                want.discard(label)
                got[label] = m
    check(not want, "engines never started %s (iopub)" % sorted(want))
    return got


# ---------------------------------------------------------------------------
# Every message received is checked against the doc's envelope rules.

HEX = set("0123456789abcdef")
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ENVELOPE = []           # violations: (channel, msg_type, what)
ENGINE_REPLY_TYPES = {"execute_reply", "apply_reply", "map_reply", "push_reply", "pull_reply",
                      "clear_reply"}
CONTROLLER_OWN = {("registration", "status_reply"), ("registration", "error_reply"),
                  ("task", "abort_reply")}


class CheckedClient(lpwire.Client):
    def _parse(self, channel, frames):
        m = super()._parse(channel, frames)
        if m is not None:
            for what in envelope_problems(self, m):
                if len(ENVELOPE) < 200:
                    ENVELOPE.append((channel, m.msg_type, what))
        return m


def envelope_problems(c, m):
    h = m.header
    for f in ("msg_id", "msg_type", "session", "username", "date", "version"):
        if not isinstance(h.get(f), str):
            yield "header field %s missing or not a string" % f
    if h.get("version") != "1.0":
        yield "version %r" % h.get("version")
    for f in ("msg_id", "session"):
        v = h.get(f)
        if not (isinstance(v, str) and len(v) == 32 and set(v) <= HEX):
            yield "header %s %r is not 32 hex characters" % (f, v)
    if not DATE_RE.match(str(h.get("date"))):
        yield "header date %r is not ISO 8601 UTC with microseconds" % h.get("date")
    if m.channel == "notification":
        if m.routing not in ([b"engine"], [b"controller"]):
            yield "notification topic %r" % m.routing
        return
    if m.channel == "iopub":
        pid = m.parent_id
        if pid not in c.sent and m.parent.get("task_id") not in c.sent:
            yield "stream for a request we never sent: %r" % m.parent
        return
    # a reply
    if m.routing:
        yield "routing frames %r before the delimiter on a DEALER" % m.routing
    sent = c.sent.get(m.parent_id)
    if sent is None:
        yield "reply to msg_id %r we never sent" % m.parent_id
    elif m.parent_raw != sent:
        yield "parent_header is not the request's header copied verbatim"
    st = m.content.get("status")
    if st not in ("ok", "error"):
        yield "content status %r" % st
    if st == "error":
        for f in ("ename", "evalue"):
            if not isinstance(m.content.get(f), str):
                yield "error content lacks %s" % f
        if not isinstance(m.content.get("traceback"), str):
            yield "error content traceback %r is not a string" % (m.content.get("traceback"),)
    if (m.channel, m.msg_type) in CONTROLLER_OWN:
        return
    md = m.metadata
    if not isinstance(md.get("engine"), int):
        yield "metadata engine %r" % (md.get("engine"),)
    if md.get("status") != st:
        yield "metadata status %r, content status %r" % (md.get("status"), st)
    if st == "error" and md.get("ename") != m.content.get("ename"):
        yield "metadata ename %r, content ename %r" % (md.get("ename"), m.content.get("ename"))
    from_engine = (m.channel in ("mux", "task") and md.get("engine", -1) >= 0
                   and m.msg_type in ENGINE_REPLY_TYPES | {"frobnicate_reply", "error_reply"}
                   and m.content.get("ename") != "EngineError")
    if from_engine:
        for f in ("started", "completed"):
            if not DATE_RE.match(str(md.get(f))):
                yield "engine reply metadata %s %r" % (f, md.get(f))
        if not isinstance(md.get("stdout"), str):
            yield "engine reply metadata stdout %r" % (md.get("stdout"),)


def c_envelopes(c):
    check(not ENVELOPE, "%d messages break the doc's envelope rules, first: %s"
          % (len(ENVELOPE), "; ".join("%s %s: %s" % v for v in ENVELOPE[:6])))


def engines_of(c):
    r = c.status()
    check(r is not None, "no status_reply")
    return sorted(e["id"] for e in r.content["engines"])


def c_connection_file(c):
    conn = c.conn
    check(conn["version"] == "1.0", "version %r" % conn["version"])
    for name in ("registration", "mux", "control", "task", "notification", "iopub"):
        check(name in conn["endpoints"], "endpoint %s missing" % name)
    check(len(conn["key"]) == 64, "key not 64 hex chars")


def c_status(c):
    r = c.status()
    check(r is not None and r.msg_type == "status_reply", "status_reply: %r" % r)
    check(r.content.get("status") == "ok", "status %r" % r.content.get("status"))
    engines = r.content["engines"]
    check(len(engines) == 4, "%d engines, want 4" % len(engines))
    for f, t in (("scheme", str), ("hwm", int), ("unassigned", int)):
        check(isinstance(r.content.get(f), t), "status_reply %s %r" % (f, r.content.get(f)))
    check(r.content["scheme"] == "leastload" and r.content["hwm"] == 2,
          "default scheme/hwm: %r %r" % (r.content["scheme"], r.content["hwm"]))
    for e in engines:
        check(DATE_RE.match(str(e.get("registered"))), "registered %r is not an ISO date" % e.get("registered"))
        for f in ("direct_queue", "tasks_queued", "tasks_running", "tasks_done"):
            check(isinstance(e.get(f), int), "engine %r: %s %r" % (e.get("id"), f, e.get(f)))
        for f in ("id", "uuid", "host", "pid", "user", "cwd", "lua_version", "state",
                  "queue", "registered"):
            check(f in e, "engine %r lacks %s" % (e.get("id"), f))
        u = e["uuid"]
        check(isinstance(u, str) and len(u) == 32 and all(ch in "0123456789abcdef" for ch in u),
              "uuid %r is not 32 lowercase hex" % u)
        check(e["state"] in ("idle", "busy"), "state %r" % e["state"])
        check(isinstance(e["queue"], int) and isinstance(e["pid"], int) and isinstance(e["id"], int),
              "id/pid/queue not integers: %r" % e)


def c_heartbeat(c):
    seqs = []
    deadline = time.monotonic() + 5
    while len(seqs) < 3 and time.monotonic() < deadline:
        m = c.take("notification", lambda m: m.msg_type == "controller_heartbeat",
                   deadline - time.monotonic())
        if m is None:
            break
        check(m.routing == [b"controller"], "topic frame %r, doc: controller" % m.routing)
        check("heartbeat_msec" in m.content and isinstance(m.content.get("seq"), int),
              "content %r, doc: {seq, heartbeat_msec}" % m.content)
        seqs.append(m.content["seq"])
    check(len(seqs) == 3, "%d controller_heartbeat in 5 s (default period 1 s)" % len(seqs))
    check(seqs == sorted(seqs) and len(set(seqs)) == 3, "seq not increasing: %r" % seqs)


def c_execute(c):
    h = c.send("mux", "execute_request", {"code": "1+1"}, targets=[0])
    r = c.reply_to(h["msg_id"], "mux", T)
    check(ok_values(r, "execute 1+1") == [2], "values %r" % r.content.get("values"))
    check(r.msg_type == "execute_reply", "msg_type %r" % r.msg_type)
    hdr = {k: v for k, v in h.items() if k != "_frames"}
    check(r.parent == hdr, "parent_header %r is not the request's header %r" % (r.parent, hdr))
    for f in ("engine", "status", "started", "completed", "stdout"):
        check(f in r.metadata, "metadata lacks %s: %r" % (f, r.metadata))
    check(r.metadata["engine"] == 0, "metadata engine %r" % r.metadata["engine"])
    for f in ("started", "completed"):
        lpwire.parse_date(r.metadata[f])
    lpwire.parse_date(r.header["date"])
    # several values, and stdout in the metadata and on iopub
    r = c.execute(1, "return {}, {{}}, {x = {}}")
    check(ok_values(r, "empty tables") == [[], [[]], {"x": []}], "empty tables: %r" % r.content.get("values"))
    r = c.execute(1, "print('hello') return 1, 'two', 3.5, true, nil")
    check(ok_values(r, "execute multi") == [1, "two", 3.5, True, None],
          "values %r" % r.content.get("values"))
    check(r.metadata.get("stdout") == "hello\n", "metadata stdout %r" % r.metadata.get("stdout"))
    s = c.take("iopub", lambda m: m.parent_id == r.parent_id, T)
    check(s is not None and s.routing == [b"engine.1.stream"] and s.content.get("name") == "stdout"
          and "hello" in s.content.get("text", ""), "iopub stream %r" % s)
    check(s.metadata.get("engine") == 1, "stream metadata %r" % s.metadata)
    # "Each request starts with Lua's garbage collector running"
    c.execute(2, "collectgarbage('stop')")
    check(ok_values(c.execute(2, "return collectgarbage('isrunning')"), "gc") == [True],
          "the collector stopped by the previous request is still stopped")
    # syntax error
    err(c.execute(0, "return +"), "syntax", "SyntaxError")
    r = err(c.execute(0, "error('boom')"), "runtime", "LuaError")
    check(isinstance(r.content.get("traceback"), str), "traceback not a string")


def c_apply_map(c):
    r = c.request("mux", "apply_request", {"fn": "math.max", "args": [3, 7, 5]}, targets=[2], wait=T)
    check(ok_values(r, "apply math.max") == [7], "values %r" % r.content.get("values"))
    check(r.msg_type == "apply_reply", "msg_type %r" % r.msg_type)
    r = c.request("mux", "apply_request", {"fn": "function(a, b) return a .. b, #a end",
                                           "args": ["x", "yz"]}, targets=[2], wait=T)
    check(ok_values(r, "apply fn") == ["xyz", 1], "values %r" % r.content.get("values"))
    r = c.request("mux", "apply_request", {"fn": "string.rep", "args": ["ab", 3]}, targets=[2], wait=T)
    check(ok_values(r, "apply dotted name") == ["ababab"], "values %r" % r.content.get("values"))
    err(c.request("mux", "apply_request", {"fn": "math.pi", "args": []}, targets=[2], wait=T),
        "apply non-function", "NameError")
    r = c.request("mux", "map_request", {"fn": "function(x) return x * 2 end",
                                         "items": [1, 2, 3]}, targets=[3], wait=T)
    check(ok_values(r, "map") == [2, 4, 6], "values %r" % r.content.get("values"))
    check(r.msg_type == "map_reply", "msg_type %r" % r.msg_type)
    # items as a typed array (ext 1, float64, out of band)
    ta = TypedArray(FLOAT64, [0.5, 1.5, 2.5])
    r = c.request("mux", "map_request", {"fn": "function(x) return x + 1 end", "items": ta},
                  targets=[3], wait=T)
    check(ok_values(r, "map typed") == [1.5, 2.5, 3.5], "values %r" % r.content.get("values"))


def c_push_pull_clear(c):
    big = "é" + "a" * (70 * 1024) + "z"          # > 64 KiB, text
    blob = bytes(range(256)) * 300                # 76800 bytes, not UTF-8
    arr = TypedArray(INT32, [1, -2, 3])           # an lp.array
    f32 = TypedArray(lpwire.FLOAT32, [0.5, -1.25])
    u8 = TypedArray(lpwire.UINT8, list(range(256)) * 5000)    # 1.28 MB: two pieces
    huge = "x" * (2 * 1024 * 1024 + 512 * 1024)   # 2.5 MiB: three pieces
    tiny = msgpack.ExtType(2, lpwire._ext_payload(0, 1, 0, 1))   # 5 bytes out of band
    seq_small = TypedArray(FLOAT64, [1.0, 2.5], sequence=True)   # a plain table
    seq_big = list(range(5000))                   # > 4096 ints: int64 + sequence flag
    ns = {"a": 5, "big": big, "blob": blob, "arr": arr, "seqs": seq_small, "seqb": seq_big,
          "t": {"x": 1, "y": [1, 2]}, "f32": f32, "u8": u8, "huge": huge}
    bufs = []
    lpwire.to_wire(ns, bufs)
    check(len(bufs) >= 4, "test bug: expected out-of-band buffers, got %d" % len(bufs))
    r = c.request("mux", "push_request", {"ns": ns}, targets=[1], wait=T)
    check(r is not None and r.content.get("status") == "ok" and r.msg_type == "push_reply",
          "push: %r" % r)
    r = c.execute(1, "return #big, utf8.len(big), #blob, type(arr), #arr, type(seqs), #seqs, "
                     "seqs[2], type(seqb), #seqb, seqb[5000], t.y[2]")
    check(ok_values(r, "inspect") == [len(big.encode()), len(big), len(blob), "userdata", 3,
                                      "table", 2, 2.5, "table", 5000, 4999, 2],
          "engine sees %r" % r.content.get("values"))
    r = c.request("mux", "pull_request", {"names": ["f32", "u8", "huge", "#huge"]}, targets=[1], wait=T)
    v = ok_values(r, "pull f32/u8/huge")
    check(v[0] == f32 and v[1] == u8, "typed arrays came back as %r %r" % (v[0], v[1]))
    check(v[2] == huge and v[3] is None, "2.5 MiB string came back different")
    check(len(r.buffers) >= 5 and max(len(b) for b in r.buffers) <= lpwire.PIECE_MAX,
          "pieces %r, doc: each at most 1 MiB" % [len(b) for b in r.buffers])
    r = c.request("mux", "pull_request", {"names": ["a", "big", "blob", "arr", "seqs", "seqb",
                                                    "t", "nothing", "math.pi"]},
                  targets=[1], wait=T)
    v = ok_values(r, "pull")
    check(r.msg_type == "pull_reply", "msg_type %r" % r.msg_type)
    check(len(r.buffers) >= 3, "pull reply has %d buffer frames; big, blob and arr go out of band"
          % len(r.buffers))
    check(max(len(b) for b in r.buffers) <= lpwire.PIECE_MAX, "buffer piece > 1 MiB")
    check(v[0] == 5, "a = %r" % v[0])
    check(v[1] == big, "big string came back different (%r...)" % (str(v[1])[:20],))
    check(v[2] == blob, "bytes came back different: %r" % type(v[2]))
    check(v[3] == arr, "lp.array came back as %r" % (v[3],))
    check(v[4] == [1.0, 2.5], "small sequence came back as %r" % (v[4],))
    check(v[5] == seq_big, "5000-int sequence came back different (%r)" % type(v[5]))
    check(v[6] == {"x": 1, "y": [1, 2]}, "t = %r" % (v[6],))
    check(v[7] is None and abs(v[8] - 3.14159265) < 1e-6, "nothing / math.pi = %r %r" % (v[7], v[8]))
    # the 5000-int sequence must come back as one ext (int64, sequence flag)
    r2 = c.request("mux", "pull_request", {"names": ["seqb"]}, targets=[1], wait=T)
    raw = lpwire.unpack(r2.frames[r2.frames.index(lpwire.DELIM) + 5], r2.buffers)
    check(isinstance(raw["values"][0], TypedArray) and raw["values"][0].dtype == INT64
          and raw["values"][0].sequence, "seqb sent as %r, doc: int64 with the sequence flag"
          % (type(raw["values"][0]),))
    r = c.request("mux", "clear_request", {}, targets=[1], wait=T)
    check(r is not None and r.content.get("status") == "ok" and r.msg_type == "clear_reply",
          "clear: %r" % r)
    r = c.request("mux", "pull_request", {"names": ["a", "big"]}, targets=[1], wait=T)
    check(ok_values(r, "pull after clear") == [None, None], "after clear %r" % r.content.get("values"))
    # any valid form at any size: a 5-byte string out of band
    raw = msgpack.packb({"code": tiny}, use_bin_type=True)
    r = c.request("mux", "execute_request", None, targets=[1], raw_content=raw, buffers=[b"1 + 1"], wait=T)
    check(ok_values(r, "code as a small ext 2") == [2], "small ext 2: %r" % r.content)
    # float32 in msgpack is read as a double
    raw = msgpack.packb({"fn": "function(x) return x * 2 end", "args": [1.5]}, use_single_float=True)
    r = c.request("mux", "apply_request", None, targets=[1], raw_content=raw, wait=T)
    check(ok_values(r, "float32 arg") == [3.0], "float32: %r" % r.content)
    # "Frame sizes": a table of 200,000 distinct strings (~2.6 MB of msgpack)
    # goes as ext 3 in pieces, both ways; no frame over the 2 MiB cap
    table = ["s%07d" % i for i in range(200000)]
    bufs = []
    cframe = lpwire.pack({"ns": {"t": table}}, bufs)
    check(len(cframe) < 64 and len(bufs) >= 2 and max(len(b) for b in bufs) <= lpwire.PIECE_MAX,
          "test bug: the table should go in pieces (%d bytes, %d buffers)" % (len(cframe), len(bufs)))
    r = c.request("mux", "push_request", {"ns": {"t": table}}, targets=[1], wait=T)
    check(r is not None and r.content.get("status") == "ok", "push of a big table: %r" % r)
    r = c.execute(1, "return #t, t[1], t[200000]")
    check(ok_values(r, "big table on the engine") == [200000, "s0000000", "s0199999"],
          "engine sees %r" % (r.content.get("values"),))
    r = c.request("mux", "pull_request", {"names": ["t"]}, targets=[1], wait=T)
    v = ok_values(r, "pull of a big table")
    check(v == [table], "the big table came back different")
    body = r.frames[r.frames.index(lpwire.DELIM) + 1:]
    check(max(len(f) for f in body) <= lpwire.FRAME_CAP, "a frame over the 2 MiB cap")
    check(len(body[4]) < 64 and len(r.buffers) >= 2,
          "pull reply: content frame of %d bytes, %d buffers; doc: the table goes as ext 3"
          % (len(body[4]), len(r.buffers)))
    r = c.request("mux", "clear_request", {}, targets=[1], wait=T)
    check(r is not None and r.content.get("status") == "ok", "clear: %r" % r)


def c_match_by_id(c):
    # Three requests to engine 2 and one to each engine; replies are told
    # apart by parent msg_id alone.
    hs = [c.send("mux", "execute_request", {"code": "return %d" % i}, targets=[2]) for i in range(3)]
    hall = c.send("mux", "execute_request", {"code": "return 'all'"}, targets=[0, 1, 2, 3])
    for i, h in enumerate(reversed(hs)):
        r = c.reply_to(h["msg_id"], "mux", T)
        check(ok_values(r, "request %d" % i) == [2 - i], "reply %r to the wrong request" % r)
    rs = c.replies_to(hall["msg_id"], "mux", 4, T)
    check(sorted(r.metadata["engine"] for r in rs) == [0, 1, 2, 3],
          "replies to a 4-target request from %r" % [r.metadata.get("engine") for r in rs])
    check(not c.replies_to(hall["msg_id"], "mux", 1, 0.3), "a fifth reply")


def c_replay(c):
    c.execute(0, "counter = 0")
    code = "counter = counter + 1 return counter"
    h = c.send("mux", "execute_request", {"code": code}, targets=[0])
    r = c.reply_to(h["msg_id"], "mux", T)
    check(ok_values(r, "first") == [1], "first run %r" % r.content.get("values"))
    c.send_frames("mux", h["_frames"])          # same frames: a replay
    check(c.reply_to(h["msg_id"], "mux", QUIET) is None, "a replay on mux was answered")
    c.send_frames("task", h["_frames"])         # the same id on another channel
    check(c.reply_to(h["msg_id"], "task", QUIET) is None,
          "a mux msg_id replayed on the task channel was answered (doc: ONE replay guard)")
    check(ok_values(c.execute(0, "return counter"), "counter") == [1], "request ran twice")
    # A reply signed by us (as if captured) that replays nothing: dropped.
    # A bad signature: dropped.
    frames = list(c.build(c.header("execute_request", targets=[0]), {"code": code}))
    frames[1] = b"0" * 64
    c.send_frames("mux", frames)
    check(ok_values(c.execute(0, "return counter"), "counter") == [1], "badly signed request ran")


def c_date_window(c):
    c.execute(0, "dated = 0")
    code = "dated = dated + 1 return dated"
    for off, what in ((-600, "10 min old"), (600, "10 min in the future")):
        h = c.send("mux", "execute_request", {"code": code}, targets=[0], date=lpwire.iso_now(off))
        check(c.reply_to(h["msg_id"], "mux", QUIET) is None, "mux request dated %s was answered" % what)
        h = c.send("task", "execute_request", {"code": code}, date=lpwire.iso_now(off))
        r = err(c.reply_to(h["msg_id"], "task", T), "task dated " + what, "ProtocolError")
        check(str(r.content.get("evalue", "")).startswith("request refused by the controller: "),
              "evalue %r" % r.content.get("evalue"))
        check(r.metadata.get("engine") == -1, "metadata engine %r, doc: -1" % r.metadata.get("engine"))
    h = c.send("mux", "execute_request", {"code": code}, targets=[0], date="yesterday")
    check(c.reply_to(h["msg_id"], "mux", QUIET) is None, "request with no valid date answered")
    # other accepted forms: no fraction, nanoseconds, +00:00
    now = lpwire.iso_now()
    for d in (now[:19] + "Z", now[:26] + "123Z", now[:26] + "+00:00"):
        h = c.send("mux", "execute_request", {"code": "return 1"}, targets=[0], date=d)
        check(c.reply_to(h["msg_id"], "mux", T) is not None, "date %r refused" % d)
    check(ok_values(c.execute(0, "return dated"), "dated") == [0], "a stale request ran")
    # inside the default 60 s window, either way
    for off in (-30, 30):
        h = c.send("mux", "execute_request", {"code": "return 1"}, targets=[0], date=lpwire.iso_now(off))
        check(c.reply_to(h["msg_id"], "mux", T) is not None, "request dated %+d s refused" % off)
    # "A message dropped as malformed after its msg_id was checked gives the
    #  id back: only a message accepted whole uses up its msg_id."
    mid = lpwire.new_id()
    c.send("mux", "execute_request", {"code": code}, targets=[0], date=lpwire.iso_now(-600), msg_id=mid)
    check(c.reply_to(mid, "mux", QUIET) is None, "stale request answered")
    h = c.send("mux", "execute_request", {"code": "return 'second try'"}, targets=[0], msg_id=mid)
    r = c.reply_to(mid, "mux", T)
    check(r is not None, "a msg_id first seen on a request dropped for its date is burnt")


def exactly(c, channel, msg_id, n):
    """The replies to msg_id: waits for n (deadline T), then briefly for
    one more (which would be one too many)."""
    rs = c.replies_to(msg_id, channel, n, T)
    if len(rs) == n:
        rs += c.replies_to(msg_id, channel, 1, 0.3)
    return rs


def c_targets(c):
    h = c.send("mux", "execute_request", {"code": "return 1"}, targets=[1, 1, 0, 1])
    rs = exactly(c, "mux", h["msg_id"], 2)
    check(sorted(r.metadata.get("engine") for r in rs) == [0, 1],
          "targets [1,1,0,1]: replies from %r, doc: folded" % [r.metadata.get("engine") for r in rs])
    for targets, what in (([0, 1, 2, 3, 0, 1], "4 distinct after folding (allowed)"),):
        h = c.send("mux", "execute_request", {"code": "return 1"}, targets=targets)
        rs = exactly(c, "mux", h["msg_id"], 4)
        check(len(rs) == 4, "%s: %d replies" % (what, len(rs)))
    for targets, what in (([0, 1, 2, 3, 7], "5 engines of 4"), (["x"], "a string id"),
                          ([], "empty"), (None, "missing"), ([1.5], "a float id")):
        h = c.send("mux", "execute_request", {"code": "return 1"}, targets=targets)
        rs = exactly(c, "mux", h["msg_id"], 1)
        check(len(rs) == 1, "%s: %d replies, doc: ONE error reply" % (what, len(rs)))
        err(rs[0], what, "ProtocolError")
        check(rs[0].metadata.get("engine") == -1, "%s: metadata engine %r" % (what, rs[0].metadata.get("engine")))
    h = c.send("mux", "execute_request", {"code": "return 1"}, targets=[0, 99])
    rs = exactly(c, "mux", h["msg_id"], 2)
    by = {r.metadata.get("engine"): r for r in rs}
    check(sorted(by) == [0, 99], "targets [0, 99]: replies from %r" % sorted(by))
    err(by[99], "unregistered target", "EngineError")
    check(by[0].content.get("status") == "ok", "registered target failed")
    # control requests are routed exactly as direct ones
    h = c.send("control", "interrupt_request", {}, targets=[2, 2, 3])
    rs = exactly(c, "control", h["msg_id"], 2)
    check(sorted(r.metadata.get("engine") for r in rs) == [2, 3],
          "control targets [2,2,3]: replies from %r" % [r.metadata.get("engine") for r in rs])
    h = c.send("control", "interrupt_request", {}, targets=[0, 1, 2, 3, 4])
    rs = exactly(c, "control", h["msg_id"], 1)
    check(len(rs) == 1 and rs[0].content.get("ename") == "ProtocolError" and rs[0].metadata.get("engine") == -1,
          "control with 5 targets: %r" % rs)
    # the same rule for a task's targets
    h = c.send("task", "execute_request", {"code": "return 1"}, targets=[0, 1, 2, 3, 4])
    r = err(c.reply_to(h["msg_id"], "task", T), "task with 5 targets", "ProtocolError")
    check(r.metadata.get("engine") == -1, "task targets refusal engine %r" % r.metadata.get("engine"))
    h = c.send("task", "execute_request", {"code": "return 1"}, targets=[2, 2])
    r = c.reply_to(h["msg_id"], "task", T)
    check(ok_values(r, "task targets [2,2]") == [1] and r.metadata.get("engine") == 2,
          "task with targets [2,2] ran on %r" % r.metadata.get("engine"))


def c_undecodable(c):
    # A signed request whose header decodes but whose content does not:
    # "Engines always answer ... ProtocolError", reply type <x>_reply.
    for ch, tg in (("task", None), ("mux", [0])):
        h = c.send(ch, "execute_request", None, targets=tg, raw_content=b"\x82\xa4code")
        r = err(c.reply_to(h["msg_id"], ch, T), ch + " truncated content", "ProtocolError")
        check(r.msg_type == "execute_reply", "%s: reply type %r" % (ch, r.msg_type))
        h = c.send(ch, "execute_request", None, targets=tg, raw_content=b"\xc1")
        err(c.reply_to(h["msg_id"], ch, T), ch + " content 0xc1", "ProtocolError")
        # content not a map, trailing bytes, a missing field, a wrong type
        for raw, what in ((b"\x91\x01", "content an array"), (b"\x80\x80", "bytes after the map")):
            h = c.send(ch, "execute_request", None, targets=tg, raw_content=raw)
            err(c.reply_to(h["msg_id"], ch, T), "%s %s" % (ch, what), "ProtocolError")
        h = c.send(ch, "execute_request", {"kode": "1"}, targets=tg)
        err(c.reply_to(h["msg_id"], ch, T), ch + " missing code", "ProtocolError")
        h = c.send(ch, "execute_request", {"code": 12}, targets=tg)
        err(c.reply_to(h["msg_id"], ch, T), ch + " code not a string", "ProtocolError")
        # an ext referring to buffer frames the message lacks
        bad_ext = lpwire.msgpack.packb({"code": lpwire.msgpack.ExtType(
            2, lpwire._ext_payload(0, 1, 0, 1))}, use_bin_type=True)
        h = c.send(ch, "execute_request", None, targets=tg, raw_content=bad_ext)
        err(c.reply_to(h["msg_id"], ch, T), ch + " ext without buffer", "ProtocolError")
        # a buffer changed after signing: "an engine answers it with
        # ProtocolError", the controller passing it on (it checks the
        # signature only)
        raw = msgpack.packb({"code": lpwire.msgpack.ExtType(2, lpwire._ext_payload(0, 1, 0, 1))},
                            use_bin_type=True)
        h = c.header("execute_request", targets=tg)
        frames = c.build(h, None, raw_content=raw, buffers=[b"return 1"])
        frames[-1] = b"return 2"
        c.send_frames(ch, frames)
        r = err(c.reply_to(h["msg_id"], ch, T), ch + " buffer changed after signing", "ProtocolError")
        check("digest" in str(r.content.get("evalue")),
              "%s: tampered buffer evalue %r, doc: buffer N does not match its digest"
              % (ch, r.content.get("evalue")))
        h = c.send(ch, "frobnicate_request", {}, targets=tg)
        r = err(c.reply_to(h["msg_id"], ch, T), ch + " unknown msg_type", "ProtocolError")
        check(r.msg_type == "frobnicate_reply", "%s: unknown request answered as %r" % (ch, r.msg_type))
        h = c.send(ch, "frobnicate", {}, targets=tg)
        r = err(c.reply_to(h["msg_id"], ch, T), ch + " unknown msg_type (no _request)", "ProtocolError")
        check(r.msg_type == "error_reply", "%s: answered as %r, doc: error_reply" % (ch, r.msg_type))
    # the control channel: served by the engine's heartbeat thread
    h = c.send("control", "frobnicate_request", {}, targets=[1])
    r = err(c.reply_to(h["msg_id"], "control", T), "control unknown msg_type", "ProtocolError")
    check(r.msg_type == "frobnicate_reply" and r.metadata.get("engine") == 1, "control: %r" % r)
    h = c.send("control", "abort_request", {"msg_ids": "not an array"}, targets=[1])
    r = err(c.reply_to(h["msg_id"], "control", T), "control abort mistyped", "ProtocolError")
    check(r.msg_type == "abort_reply", "control abort mistyped answered as %r" % r.msg_type)
    # content nested deeper than 32: does not decode, answered
    deep = 1
    for _ in range(40):
        deep = [deep]
    h = c.send("mux", "push_request", {"ns": {"d": deep}}, targets=[0])
    err(c.reply_to(h["msg_id"], "mux", T), "content nested 42 deep", "ProtocolError")
    # the engine still serves
    check(ok_values(c.execute(0, "return 3"), "after garbage") == [3], "engine 0 broken")


def c_retry(c):
    # Fails on its first engine, succeeds on the next (a file marks the first
    # attempt). The final reply names the client's msg_id; the engine saw a
    # new msg_id with task_id = the client's msg_id.
    mark = flag_file("retry-mark")
    code = ("local f = io.open(%s) if f then f:close() print('second attempt') return 'second' end "
            "io.open(%s, 'w'):close() print('first attempt') error('first attempt fails')"
            % (lua_str(mark), lua_str(mark)))
    h = c.send("task", "execute_request", {"code": code}, retries=1)
    r = c.reply_to(h["msg_id"], "task", T)
    check(ok_values(r, "retried task") == ["second"], "retried task gave %r" % r.content)
    hdr = {k: v for k, v in h.items() if k != "_frames"}
    check(r.parent == hdr, "parent_header %r, doc: the original request header" % (r.parent,))
    check(not c.replies_to(h["msg_id"], "task", 1, 0.5), "a second reply to a retried task")
    streams = c.take_all("iopub", lambda m: m.msg_type == "stream" and "attempt" in m.content.get("text", ""), 2, T)
    check(len(streams) == 2, "%d stream messages from two attempts" % len(streams))
    first = [s for s in streams if "first" in s.content["text"]][0]
    second = [s for s in streams if "second" in s.content["text"]][0]
    check(first.parent_id == h["msg_id"], "first attempt ran as %r, doc: forwarded unchanged" % first.parent)
    check(second.parent_id != h["msg_id"] and second.parent.get("task_id") == h["msg_id"],
          "second attempt's header %r, doc: fresh msg_id and task_id" % (second.parent,))
    # retries=1 and failing twice: one error reply with the client's msg_id
    h = c.send("task", "execute_request", {"code": "error('always')"}, retries=1)
    r = err(c.reply_to(h["msg_id"], "task", T), "task failing twice", "LuaError")
    check(r.parent.get("msg_id") == h["msg_id"] and "task_id" not in r.parent, "parent %r" % r.parent)
    check(not c.replies_to(h["msg_id"], "task", 1, 0.5), "a second reply to a failed retried task")


def c_task_flags(c):
    h = c.send("task", "execute_request", {"code": "return 1"}, targets=[99], timeout=300)
    r = err(c.reply_to(h["msg_id"], "task", T), "task for an absent engine with timeout", "TimeoutError")
    check(r.metadata.get("engine") == -1, "TimeoutError engine %r" % r.metadata.get("engine"))
    h = c.send("task", "execute_request", {"code": "return 1"}, after=[lpwire.new_id()])
    err(c.reply_to(h["msg_id"], "task", T), "after an unknown task", "DependencyError")
    h = c.send("task", "execute_request", {"code": "while true do end"}, time_limit=200)
    r = err(c.reply_to(h["msg_id"], "task", T), "time_limit", "TimeLimit")
    check(ok_values(c.execute(r.metadata["engine"], "return 'usable'"), "after TimeLimit") == ["usable"],
          "engine unusable after TimeLimit")
    h = c.send("task", "execute_request", {"code": "return 1"}, retries=-1)
    r = err(c.reply_to(h["msg_id"], "task", T), "retries -1", "ProtocolError")
    check(r.metadata.get("engine") == -1, "bad flags reply engine %r" % r.metadata.get("engine"))
    h = c.send("task", "execute_request", {"code": "return 1"}, after="not an array")
    err(c.reply_to(h["msg_id"], "task", T), "after not an array", "ProtocolError")
    h = c.send("task", "execute_request", {"code": "return 1"}, msg_id="x" * 65)
    r = c.reply_to(h["msg_id"], "task", T)
    r = err(r, "a task msg_id of 65 characters (doc: at most 64)", "ProtocolError")
    check(r.metadata.get("engine") == -1, "engine %r" % r.metadata.get("engine"))
    hf = c.send("task", "execute_request", {"code": "error('dep fails')"})
    err(c.reply_to(hf["msg_id"], "task", T), "failing dependency", "LuaError")
    h = c.send("task", "execute_request", {"code": "return 1"}, after=[hf["msg_id"]])
    err(c.reply_to(h["msg_id"], "task", T), "after a failed task (success required)", "DependencyError")
    h = c.send("task", "execute_request", {"code": "return 'on failure'"}, after=[hf["msg_id"]],
               success=False, failure=True)
    check(ok_values(c.reply_to(h["msg_id"], "task", T), "after a failure, failure=true") == ["on failure"], "")
    h1 = c.send("task", "execute_request", {"code": "return 'a'"})
    r1 = c.reply_to(h1["msg_id"], "task", T)
    ok_values(r1, "task a")
    h2 = c.send("task", "execute_request", {"code": "return 'b'"}, follow=[h1["msg_id"]])
    r2 = c.reply_to(h2["msg_id"], "task", T)
    check(ok_values(r2, "follow") == ["b"] and r2.metadata["engine"] == r1.metadata["engine"],
          "follow ran on %r, followed on %r" % (r2.metadata.get("engine"), r1.metadata.get("engine")))


def c_mistyped_flags(c):
    # docs/protocol.md: "ProtocolError (bad scheduling flags ...)"; engines:
    # "a missing or mistyped field ... gets an error reply with ename
    # ProtocolError". A mistyped flag must not be silently dropped.
    bad = []
    for flag, value in (("retries", "many"), ("retries", 1.5), ("timeout", "soon"),
                        ("time_limit", "x"), ("success", "yes"), ("failure", 0)):
        h = c.send("task", "execute_request", {"code": "return 1"}, **{flag: value})
        r = c.reply_to(h["msg_id"], "task", T)
        check(r is not None, "task with %s=%r: no reply" % (flag, value))
        if r.content.get("ename") != "ProtocolError":
            bad.append("task %s=%r -> %s" % (flag, value, r.content.get("ename") or r.content.get("status")))
    h = c.send("mux", "execute_request", {"code": "return 1"}, targets=[0], time_limit="x")
    r = c.reply_to(h["msg_id"], "mux", T)
    check(r is not None, "direct request with time_limit 'x': no reply")
    if r.content.get("ename") != "ProtocolError":
        bad.append("direct time_limit='x' -> %s" % (r.content.get("ename") or r.content.get("status")))
    check(not bad, "mistyped flags accepted: " + "; ".join(bad))


def c_more_replays(c):
    h = c.send("task", "execute_request", {"code": "return 'once'"})
    check(ok_values(c.reply_to(h["msg_id"], "task", T), "task") == ["once"], "task")
    c.send_frames("task", h["_frames"])
    check(c.reply_to(h["msg_id"], "task", QUIET) is None, "a replayed task was answered")
    h = c.send("control", "interrupt_request", {}, targets=[0])
    check(c.reply_to(h["msg_id"], "control", T) is not None, "interrupt_reply")
    c.send_frames("control", h["_frames"])
    check(c.reply_to(h["msg_id"], "control", QUIET) is None, "a replayed control request was answered")
    h = c.send("registration", "status_request", {})
    check(c.reply_to(h["msg_id"], "registration", T) is not None, "status_reply")
    c.send_frames("registration", h["_frames"])
    check(c.reply_to(h["msg_id"], "registration", QUIET) is None, "a replayed status_request was answered")
    # a header that is not a map: dropped, unanswered
    hd = c.header("execute_request", targets=[0])
    fr = c.build(hd, {"code": "return 1"})
    fr[2] = msgpack.packb([hd["msg_id"]])
    fr[1] = lpwire.sign(c.key, fr[2:])
    c.send_frames("mux", fr)
    check(c.reply_to(hd["msg_id"], "mux", QUIET) is None, "a header that is not a map was answered")
    # a signed message whose header decodes but lacks msg_type: dropped
    hd = c.header("execute_request", targets=[0])
    del hd["msg_type"]
    c.send_frames("mux", c.build(hd, {"code": "return 1"}))
    check(c.reply_to(hd["msg_id"], "mux", QUIET) is None, "a header without msg_type was answered")


def c_abort_task(c):
    # hwm 2, 4 engines: 8 tasks assigned (4 running, 4 queued), 2 waiting.
    gate = flag_file("abort-task-gate")
    hs = []
    for i in range(10):
        # retries=1: an Aborted reply is final all the same
        hs.append(c.send("task", "execute_request", {"code": wait_code(gate, "T%d" % i)}, retries=1))
    ids = [h["msg_id"] for h in hs]
    # wait until 4 engines run one each (iopub)
    running = set()
    deadline = time.monotonic() + T
    while len(running) < 4 and time.monotonic() < deadline:
        m = c.take("iopub", lambda m: m.msg_type == "stream" and "started T" in m.content.get("text", ""),
                   deadline - time.monotonic())
        if m is None:
            break
        running.add(m.parent_id)
    check(len(running) == 4, "%d tasks started, want 4" % len(running))
    st = c.status()
    busy = [e for e in st.content["engines"] if e["state"] == "busy"]
    check(len(busy) == 4 and all(e["queue"] == 2 for e in st.content["engines"]),
          "status during: %r" % [(e["id"], e["state"], e["queue"]) for e in st.content["engines"]])
    r = c.request("task", "abort_request", {"msg_ids": ids}, wait=T)
    check(r is not None and r.msg_type == "abort_reply" and r.content.get("status") == "ok", "abort_reply %r" % r)
    ab, nab, asg = r.content.get("aborted"), r.content.get("not_aborted"), r.content.get("assigned")
    check(isinstance(asg, dict), "abort_reply lacks the map assigned: %r" % r.content)
    check(len(ab) == 2 and len(nab) == 8 and sorted(asg) == sorted(nab),
          "aborted %d not_aborted %d assigned %d, want 2 / 8 / the 8" % (len(ab), len(nab), len(asg)))
    check(set(ab) | set(nab) == set(ids), "abort_reply lost ids")
    for mid in ab:
        e = err(c.reply_to(mid, "task", T), "scheduler-aborted task", "Aborted")
        check(e.metadata.get("engine") == -1, "scheduler Aborted engine %r" % e.metadata.get("engine"))
    # now the queued ones, on each engine's control channel
    per_engine = {}
    for mid, eng in asg.items():
        per_engine.setdefault(eng, []).append(mid)
    engine_aborted = set()
    for eng, mids in per_engine.items():
        cr = c.request("control", "abort_request", {"msg_ids": mids}, targets=[eng], wait=T)
        check(cr is not None and cr.msg_type == "abort_reply", "control abort_reply %r" % cr)
        check(cr.metadata.get("engine") == eng, "control reply metadata engine %r" % cr.metadata.get("engine"))
        engine_aborted |= set(cr.content["aborted"])
        check(set(cr.content["aborted"]) | set(cr.content["not_aborted"]) == set(mids), "control abort lost ids")
        check(not (set(cr.content["aborted"]) & running), "a running task was marked aborted")
    check(engine_aborted == set(nab) - running, "engines aborted %d of the %d queued"
          % (len(engine_aborted), len(set(nab) - running)))
    release(gate)
    for mid in nab:
        rr = c.reply_to(mid, "task", T)
        check(rr is not None, "no reply to assigned task %s" % mid)
        if mid in engine_aborted:
            e = err(rr, "engine-aborted task", "Aborted")
            check(str(e.content.get("evalue", "")).startswith("aborted before it started (engine "),
                  "evalue %r" % e.content.get("evalue"))
        else:
            check(rr.content.get("status") == "ok", "running task ended %r" % rr.content)
    check(not c.take_all("task", lambda m: m.parent_id in ids, 1, 0.5), "an extra reply (a retry of Aborted?)")
    check(not c.take_all("iopub", lambda m: m.parent.get("task_id") in ids, 1, 0.2),
          "an aborted task was retried (doc: an Aborted reply is final)")


def c_abort_direct(c):
    gate = flag_file("abort-direct-gate")
    h1 = c.send("mux", "execute_request", {"code": wait_code(gate, "D1")}, targets=[3])
    h2 = c.send("mux", "execute_request", {"code": "ran_d2 = true return 2"}, targets=[3])
    wait_started(c, ["D1"])
    cr = c.request("control", "abort_request", {"msg_ids": [h1["msg_id"], h2["msg_id"]]},
                   targets=[3], wait=T)
    check(cr is not None and cr.content.get("status") == "ok", "abort_reply %r" % cr)
    check(cr.content.get("aborted") == [h2["msg_id"]] and cr.content.get("not_aborted") == [h1["msg_id"]],
          "aborted %r not_aborted %r" % (cr.content.get("aborted"), cr.content.get("not_aborted")))
    release(gate)
    check(ok_values(c.reply_to(h1["msg_id"], "mux", T), "running D1") == ["released D1"], "D1")
    e = err(c.reply_to(h2["msg_id"], "mux", T), "queued D2", "Aborted")
    check(e.msg_type == "execute_reply", "Aborted reply type %r, doc: its normal reply type" % e.msg_type)
    check(ok_values(c.execute(3, "return ran_d2"), "ran_d2") == [None], "aborted request ran")
    # a completed request is not_aborted
    cr = c.request("control", "abort_request", {"msg_ids": [h1["msg_id"]]}, targets=[3], wait=T)
    check(cr is not None and cr.content.get("not_aborted") == [h1["msg_id"]], "abort of a finished request %r"
          % (cr and cr.content))
    # at most 4096 marks; beyond, not_aborted
    many = [lpwire.new_id() for _ in range(5000)]
    cr = c.request("control", "abort_request", {"msg_ids": many}, targets=[3], wait=T)
    check(cr is not None and len(cr.content["aborted"]) == 4096 and len(cr.content["not_aborted"]) == 904
          and set(cr.content["aborted"]) | set(cr.content["not_aborted"]) == set(many),
          "5000 marks: aborted %d not_aborted %d" % (len(cr.content["aborted"]), len(cr.content["not_aborted"])))


def c_interrupt(c):
    r = c.request("control", "interrupt_request", {}, targets=[2], wait=T)
    check(r is not None and r.msg_type == "interrupt_reply" and r.content.get("interrupted") is False,
          "interrupt of an idle engine: %r" % r)
    gate = flag_file("never")
    h = c.send("mux", "execute_request", {"code": wait_code(gate, "I")}, targets=[2])
    wait_started(c, ["I"])
    r = c.request("control", "interrupt_request", {}, targets=[2], wait=T)
    check(r is not None and r.content.get("status") == "ok" and r.content.get("interrupted") is True,
          "interrupt of a busy engine: %r" % r)
    err(c.reply_to(h["msg_id"], "mux", T), "interrupted request", "Interrupted")
    check(ok_values(c.execute(2, "return 'alive'"), "after interrupt") == ["alive"], "engine 2")


def c_engine_death(c):
    # A task (retries=1) runs on engine E, a direct request waits behind it;
    # E is killed with SIGKILL (its pid from status_reply: an engine this
    # test's cluster started). The task is retried elsewhere and answered
    # under the client's msg_id; the direct request gets EngineError.
    before = {e["id"]: e for e in c.status().content["engines"]}
    mark = flag_file("death-mark")
    code = ("local f = io.open(%s) if f then f:close() return 'retried' end %s"
            % (lua_str(mark), wait_code(flag_file("never"), "K")))
    ht = c.send("task", "execute_request", {"code": code}, retries=1)
    s = wait_started(c, ["K"])["K"]
    eid = int(s.routing[0].split(b".")[1])
    hd = c.send("mux", "execute_request", {"code": "return 'direct'"}, targets=[eid])
    release(mark)
    os.kill(before[eid]["pid"], signal.SIGKILL)
    r = c.reply_to(ht["msg_id"], "task", T)
    check(ok_values(r, "task whose engine died") == ["retried"], "retried task %r" % r.content)
    check(r.metadata.get("engine") != eid, "retry ran on the dead engine")
    e = err(c.reply_to(hd["msg_id"], "mux", T), "direct request on the dead engine", "EngineError")
    check(e.metadata.get("engine") == eid, "EngineError metadata engine %r" % e.metadata.get("engine"))
    # "died: ..." when it was forwarded before the death; "is not
    # reachable" or "is not registered" when the mux read it after the
    # connection went or after the death was known.
    ev = str(e.content.get("evalue"))
    check(ev.startswith("engine %d died: " % eid)
          or ev in ("engine %d is not reachable" % eid, "engine %d is not registered" % eid),
          "evalue %r" % ev)
    m = c.take("notification", lambda m: m.msg_type == "engine_unregistered" and m.content.get("id") == eid, T)
    check(m is not None and m.routing == [b"engine"] and str(m.content.get("reason")).startswith("died"),
          "engine_unregistered %r" % m)
    left = engines_of(c)
    check(eid not in left and len(left) == 3, "engines after the death: %r" % left)


def c_shutdown_engine(c):
    ids = engines_of(c)
    victim = ids[-1]
    r = c.request("control", "shutdown_request", {}, targets=[victim], wait=T)
    check(r is not None and r.msg_type == "shutdown_reply" and r.content.get("status") == "ok",
          "shutdown_reply %r" % r)
    m = c.take("notification", lambda m: m.msg_type == "engine_unregistered" and m.content.get("id") == victim, T)
    check(m is not None and m.routing == [b"engine"] and m.content.get("reason") == "shutdown",
          "engine_unregistered %r" % m)
    rest = [i for i in ids if i != victim]
    check(engines_of(c) == rest, "engines after shutdown %r, want %r" % (engines_of(c), rest))
    r = c.request("mux", "execute_request", {"code": "return 1"}, targets=[victim], wait=T)
    err(r, "request to a gone engine", "EngineError")
    check(r.metadata.get("engine") == victim, "engine %r" % r.metadata.get("engine"))
    # fewer engines now: the old count of targets is too many
    h = c.send("mux", "execute_request", {"code": "return 1"}, targets=ids)
    rs = c.replies_to(h["msg_id"], "mux", 2, QUIET)
    check(len(rs) == 1 and rs[0].metadata.get("engine") == -1,
          "%d targets of %d engines: %r" % (len(ids), len(rest), rs))


def c_shutdown_busy(c):
    # "shutdown_request: shutdown_reply; the engine then unregisters and
    #  exits": also with a request running and others queued behind it.
    victim = engines_of(c)[-1]
    gate = flag_file("shutdown-gate")
    hr = c.send("mux", "execute_request", {"code": wait_code(gate, "S1")}, targets=[victim])
    wait_started(c, ["S1"])
    hq = c.send("mux", "execute_request", {"code": "ran_after_shutdown = true return 'ran'"},
                targets=[victim])
    ht = c.send("task", "execute_request", {"code": wait_code(gate, "S2")}, targets=[victim])
    try:
        # the task reaches the engine through the scheduler: poll status
        deadline = time.monotonic() + T
        while True:
            st = {e["id"]: e for e in c.status().content["engines"]}
            if st[victim]["queue"] == 3 or time.monotonic() > deadline:
                break
            c.take("notification", lambda m: False, 0.05)
        check(st[victim]["queue"] == 3, "queue %r before the shutdown, want 3" % st[victim]["queue"])
        r = c.request("control", "shutdown_request", {}, targets=[victim], wait=T)
        check(r is not None and r.content.get("status") == "ok", "shutdown_reply %r" % r)
        err(c.reply_to(hr["msg_id"], "mux", T), "running request at shutdown", "Interrupted")
        m = c.take("notification", lambda m: m.msg_type == "engine_unregistered"
                   and m.content.get("id") == victim, T)
        check(m is not None, "engine %d with queued requests did not unregister within %.0f s "
              "of shutdown_reply" % (victim, T))
        q = c.reply_to(hq["msg_id"], "mux", T)
        check(q is not None, "no reply to the queued direct request")
        check(q.content.get("status") == "error",
              "the queued direct request ran after shutdown_reply: %r" % q.content)
        t = c.reply_to(ht["msg_id"], "task", T)
        check(t is not None, "no reply to the queued task")
    finally:
        release(gate)
        for ch in ("mux", "task"):
            c.take_all(ch, lambda m: m.parent_id in (hq["msg_id"], ht["msg_id"]), 2, 0.5)


def c_new_engine(c):
    # An engine started from lp-engine.json registers, is announced on
    # notification, gets an id never used before, and leaves on shutdown.
    import subprocess
    prof, bindir = os.environ.get("LP_PROFILE_DIR"), os.environ.get("LP_BINDIR")
    check(prof and bindir, "LP_PROFILE_DIR / LP_BINDIR not set (run through run_with_cluster.sh)")
    p = subprocess.Popen([os.path.join(bindir, "lpengine"), "--file",
                          os.path.join(prof, "security", "lp-engine.json"),
                          "--log", os.path.join(prof, "log", "engine-python.log")],
                         stdin=subprocess.DEVNULL)
    try:
        m = c.take("notification", lambda m: m.msg_type == "engine_registered", T)
        check(m is not None and m.routing == [b"engine"], "no engine_registered within %.0f s" % T)
        for f in ("id", "uuid", "host", "pid"):
            check(f in m.content, "engine_registered lacks %s: %r" % (f, m.content))
        check(m.content["pid"] == p.pid, "engine_registered pid %r, started %d" % (m.content["pid"], p.pid))
        eid = m.content["id"]
        check(eid >= 4, "new engine got id %r, doc: ids are never reused for other uuids" % eid)
        check(eid in engines_of(c), "registered engine %r not in status" % eid)
        check(ok_values(c.execute(eid, "return 'new'"), "new engine") == ["new"], "new engine")
        r = c.request("control", "shutdown_request", {}, targets=[eid], wait=T)
        check(r is not None and r.content.get("status") == "ok", "shutdown_reply %r" % r)
        try:
            rc = p.wait(T)
        except subprocess.TimeoutExpired:
            raise AssertionError("lpengine pid %d still running %.0f s after shutdown_reply" % (p.pid, T))
        check(rc == 0, "lpengine exited with %r after shutdown" % rc)
    finally:
        if p.poll() is None:
            p.kill()        # the engine this check started, by its pid
            p.wait(5)


def after_routing(m):
    return m.frames[m.frames.index(lpwire.DELIM):]


def c_fake_engine(c):
    # The engine's half of the doc, from an engine written from it: the
    # controller forwards requests unchanged, matches replies by parent
    # msg_id and engine (any order; unknown, replayed or repeated replies
    # dropped), builds retry attempts as the doc says and gives the client
    # back its own header.
    e = lpwire.Engine(engine_conn())
    try:
        r = e.register()
        for f in ("id", "heartbeat_msec", "max_misses"):
            check(isinstance(r.content.get(f), int), "registration_reply %s %r" % (f, r.content.get(f)))
        m = c.take("notification", lambda m: m.msg_type == "engine_registered"
                   and m.content.get("uuid") == e.uuid, T)
        check(m is not None and m.content.get("id") == e.id and m.content.get("host") == "lpwire",
              "engine_registered for the fake engine: %r" % m)
        eid = e.id
        st = {x["id"]: x for x in c.status().content["engines"]}
        check(eid in st and st[eid]["uuid"] == e.uuid, "fake engine not in status")

        # direct: forwarded unchanged, answered out of order
        h1 = c.send("mux", "execute_request", {"code": "one"}, targets=[eid])
        h2 = c.send("mux", "execute_request", {"code": "two"}, targets=[eid])
        q1, q2 = e.next_request("mux", T), e.next_request("mux", T)
        check(q1 is not None and q2 is not None, "fake engine got no direct request")
        check(len(q1.routing) == 1, "engine sees routing %r, doc: [client identity]" % q1.routing)
        check(after_routing(q1) == h1["_frames"] and after_routing(q2) == h2["_frames"],
              "direct request not forwarded unchanged (or out of order)")
        st = {x["id"]: x for x in c.status().content["engines"]}
        check(st[eid]["queue"] == 2, "queue %r with two requests unanswered" % st[eid]["queue"])
        rep2 = e.reply(q2, "execute_reply", {"status": "ok", "values": ["two"]},
                       {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": ""})
        rep1 = e.reply(q1, "execute_reply", {"status": "ok", "values": ["one"]},
                       {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": ""})
        a1, a2 = c.reply_to(h1["msg_id"], "mux", T), c.reply_to(h2["msg_id"], "mux", T)
        check(a1 is not None and a1.content["values"] == ["one"], "reply 1: %r" % a1)
        check(a2 is not None and a2.content["values"] == ["two"], "reply 2: %r" % a2)
        check(a1.frames[a1.frames.index(lpwire.DELIM):] == rep1["_frames"], "reply not passed on unchanged")
        # a replayed reply, a second reply, a reply to nothing: dropped
        e.send_frames("mux", list(q1.routing) + rep1["_frames"])
        e.reply(q2, "execute_reply", {"status": "ok", "values": ["again"]})
        fake = e.header("execute_request")
        e.send_frames("mux", list(q1.routing) + e.build(e.header("execute_reply"), {"status": "ok"},
                      metadata={"engine": eid, "status": "ok"},
                      parent_raw=lpwire.msgpack.packb(fake, use_bin_type=True)))
        extra = c.take("mux", lambda m: m.parent_id in (h1["msg_id"], h2["msg_id"], fake["msg_id"]), 1.0)
        check(extra is None, "a replayed, repeated or unmatched engine reply reached the client: %r" % extra)

        # stream output goes through iopub
        h3 = c.send("mux", "execute_request", {"code": "three"}, targets=[eid])
        q3 = e.next_request("mux", T)
        e.stream(q3, "hello from lpwire\n")
        sm = c.take("iopub", lambda m: m.parent_id == h3["msg_id"], T)
        check(sm is not None and sm.routing == [("engine.%d.stream" % eid).encode()], "stream %r" % sm)

        # control: routed to the engine like a direct request
        hc = c.send("control", "interrupt_request", {}, targets=[eid])
        qc = e.next_request("control", T)
        check(qc is not None and after_routing(qc) == hc["_frames"], "control request not forwarded unchanged")
        e.reply(qc, "interrupt_reply", {"status": "ok", "interrupted": True})
        ac = c.reply_to(hc["msg_id"], "control", T)
        check(ac is not None and ac.content.get("interrupted") is True, "interrupt_reply %r" % ac)
        e.reply(q3, "execute_reply", {"status": "error", "ename": "Interrupted", "evalue": "interrupted",
                                      "traceback": ""},
                {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": ""})
        check(c.reply_to(h3["msg_id"], "mux", T) is not None, "reply 3")

        # a task with one retry: attempt 1 unchanged, attempt 2 a new message
        ht = c.send("task", "execute_request", {"code": "task"}, targets=[eid], retries=1,
                    buffers=[b"a buffer frame"])
        t1 = e.next_request("task", T)
        check(t1 is not None, "fake engine got no task")
        check(after_routing(t1) == ht["_frames"], "first attempt not forwarded unchanged")
        e.reply(t1, "execute_reply", {"status": "error", "ename": "LuaError", "evalue": "first",
                                      "traceback": ""},
                {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": ""})
        t2 = e.next_request("task", T)
        check(t2 is not None, "no second attempt after a failure with retries=1")
        check(t2.header["msg_id"] != ht["msg_id"] and t2.header.get("task_id") == ht["msg_id"],
              "attempt 2 header %r, doc: fresh msg_id, task_id = the client's" % t2.header)
        check(t2.header["date"] != ht["date"], "attempt 2 kept the client's date")
        rest = {k: v for k, v in t2.header.items() if k not in ("msg_id", "date", "task_id")}
        orig = {k: v for k, v in ht.items() if k not in ("msg_id", "date", "_frames")}
        check(rest == orig, "attempt 2 header is not a copy of the original: %r vs %r" % (rest, orig))
        check(after_routing(t2)[3:] == ht["_frames"][3:],
              "attempt 2 changed frames other than the header (and signature)")
        md = {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": "x"}
        rt = e.reply(t2, "execute_reply", {"status": "ok", "values": ["done"]}, md)
        at = c.reply_to(ht["msg_id"], "task", T)
        check(at is not None and at.content.get("values") == ["done"], "retried task reply %r" % at)
        check(at.parent_raw == ht["_frames"][2], "parent_header is not the bytes the client sent")
        check(at.metadata == rt["_metadata"], "metadata changed: %r vs %r" % (at.metadata, rt["_metadata"]))
        check(at.header_raw == rt["_frames"][2],
              "the reply's own header was changed")
        check(not c.take("task", lambda m: m.parent_id == ht["msg_id"], 0.3), "two replies to a task")

        # abort on the task channel names the engine in `assigned`
        ha = c.send("task", "execute_request", {"code": "queued"}, targets=[eid])
        qa = e.next_request("task", T)
        check(qa is not None, "task for abort not assigned")
        ab = c.request("task", "abort_request", {"msg_ids": [ha["msg_id"]]}, wait=T)
        check(ab is not None and ab.content.get("assigned") == {ha["msg_id"]: eid}
              and ab.content.get("not_aborted") == [ha["msg_id"]], "abort_reply %r" % (ab and ab.content))

        # unregistration: engine_unregistered, its open records answered
        e.unregister()
        m = c.take("notification", lambda m: m.msg_type == "engine_unregistered"
                   and m.content.get("id") == eid, T)
        check(m is not None and m.content.get("reason") == "shutdown", "engine_unregistered %r" % m)
        x = c.reply_to(ha["msg_id"], "task", T)
        err(x, "task on an engine that unregistered", "EngineError")
        check(e.relogin is False and e.pongs > 0, "heartbeat: pongs %d, LPRE %r" % (e.pongs, e.relogin))
    finally:
        if e.id is not None and e.id in engines_of(c):
            e.unregister()
        e.close()


def engine_conn():
    prof = os.environ.get("LP_PROFILE_DIR")
    check(prof, "LP_PROFILE_DIR not set (run through run_with_cluster.sh)")
    import json
    with open(os.path.join(prof, "security", "lp-engine.json")) as f:
        return json.load(f)


def c_fake_engine_rules(c):
    # Registration rules, stale replies, and heartbeat death / LPRE, with
    # an engine written from the doc.
    conn = engine_conn()
    live = engines_of(c)
    bad = lpwire.Engine(conn)
    e = lpwire.Engine(conn)
    try:
        r = bad.request("registration", "registration_request",
                        {"uuid": "not-hex", "id": -1, "host": "x", "pid": 1, "user": "u", "cwd": "/",
                         "lua_version": "x"}, wait=T)
        check(r is not None and r.content.get("status") == "error"
              and r.content.get("ename") == "RegistrationError", "bad uuid: %r" % (r and r.content))
        # asking for the id of a live engine: the next free id; registered
        # only once the three hellos are in
        r = e.register(want_id=live[0], hellos=("mux", "control"))
        eid = e.id
        check(eid not in live, "asked for live engine %d's id, got %d" % (live[0], eid))
        m = c.take("notification", lambda m: m.msg_type == "engine_registered" and m.content.get("id") == eid, 1.0)
        check(m is None and eid not in engines_of(c), "engine registered before its task hello")
        e.send("task", "engine_hello", {"id": eid})
        m = c.take("notification", lambda m: m.msg_type == "engine_registered" and m.content.get("id") == eid, T)
        check(m is not None, "no engine_registered after the three hellos")
        hb_msec, misses = r.content["heartbeat_msec"], r.content["max_misses"]
        # engine replies are matched to their record, not judged by date
        # (an engine host's clock skew must not lose a result)
        h = c.send("mux", "execute_request", {"code": "x"}, targets=[eid])
        q = e.next_request("mux", T)
        md = {"started": lpwire.iso_now(), "completed": lpwire.iso_now(), "stdout": ""}
        e.reply(q, "execute_reply", {"status": "ok", "values": ["skewed"]}, md, date=lpwire.iso_now(-600))
        a = c.reply_to(h["msg_id"], "mux", T)
        check(a is not None and a.content.get("values") == ["skewed"], "an engine reply dated 10 min ago: %r" % a)
        # silence: declared dead after max_misses periods; its request fails
        h = c.send("mux", "execute_request", {"code": "y"}, targets=[eid])
        check(e.next_request("mux", T) is not None, "request not forwarded")
        # hb_ping's sequence number is controller_heartbeat's seq
        deadline = time.monotonic() + T
        while e.last_ping is None and time.monotonic() < deadline:
            c.take("notification", lambda m: False, 0.05)
        c.take_all("notification", lambda m: m.msg_type == "controller_heartbeat", 1000, 0)
        hbm = c.take("notification", lambda m: m.msg_type == "controller_heartbeat", T)
        check(hbm is not None and e.last_ping is not None
              and abs(hbm.content["seq"] - e.last_ping) <= 2,
              "controller_heartbeat seq %r, last hb_ping seq %r" % (hbm and hbm.content.get("seq"), e.last_ping))
        t0 = time.monotonic()
        # pongs with a sequence number never sent do not count
        e.pong_mode = "bogus"
        x = c.reply_to(h["msg_id"], "mux", T + misses * hb_msec / 1000.0)
        dt = time.monotonic() - t0
        err(x, "request on a silent engine", "EngineError")
        check(str(x.content.get("evalue")).startswith("engine %d died: no heartbeat for " % eid),
              "evalue %r" % x.content.get("evalue"))
        check(dt >= (misses - 1) * hb_msec / 1000.0,
              "declared dead after %.2f s of silence, doc: %d periods of %d ms" % (dt, misses, hb_msec))
        m = c.take("notification", lambda m: m.msg_type == "engine_unregistered" and m.content.get("id") == eid, T)
        check(m is not None and str(m.content.get("reason")).startswith("died: no heartbeat"),
              "engine_unregistered %r" % m)
        # a pong from a dead engine is answered LPRE; it registers again
        # asking for its old id and gets it
        e.pong_mode = "echo"
        deadline = time.monotonic() + T
        while not e.relogin and time.monotonic() < deadline:
            c.take("notification", lambda m: False, 0.05)
        check(e.relogin, "no LPRE on hb_pong for a pong from a dead engine")
        r = e.register(want_id=eid)
        check(e.id == eid, "re-registration asking for id %d got %r" % (eid, e.id))
        check(c.take("notification", lambda m: m.msg_type == "engine_registered" and m.content.get("id") == eid, T),
              "no engine_registered after re-registration")
        check(eid in engines_of(c), "re-registered engine not in status")
    finally:
        if e.id is not None:
            e.unregister()
            c.take("notification", lambda m: m.msg_type == "engine_unregistered" and m.content.get("id") == e.id, T)
        e.close()
        bad.close()


def c_abort_saturated(c):
    # "the scheduler reads at most 4096 unassigned tasks": a client that
    # keeps within that (docs/protocol.md, Replays) must still be able to
    # abort them (docs/scheduling.md, Abort). 4096 tasks for an engine that
    # does not exist wait in the scheduler (timeout 8 s, so that they end
    # anyway); an abort_request for ten of them must be answered at once.
    n = 4096
    hs = [c.send("task", "execute_request", {"code": "return 1"}, targets=[99], timeout=8000)
          for _ in range(n)]
    ids = {h["msg_id"] for h in hs}
    try:
        deadline = time.monotonic() + T
        while True:
            u = c.status().content.get("unassigned")
            if u == n or time.monotonic() > deadline:
                break
            c.take("notification", lambda m: False, 0.05)
        check(u == n, "unassigned %r, want %d" % (u, n))
        t0 = time.monotonic()
        a = c.request("task", "abort_request", {"msg_ids": [h["msg_id"] for h in hs[:10]]}, wait=2.0)
        check(a is not None, "no abort_reply within 2 s with %d tasks waiting in the scheduler "
              "(answered only after %.1f s)" % (n, (time.monotonic() - t0)
                                                 if c.take("task", lambda m: m.msg_type == "abort_reply", 10) else -1))
        check(len(a.content["aborted"]) == 10, "abort_reply %r" % a.content)
    finally:
        got = c.take_all("task", lambda m: m.parent_id in ids, n, 30)
        check(len(got) == n, "%d of %d waiting tasks answered" % (len(got), n))


CHECKS = [
    ("connection_file", c_connection_file),
    ("status_request", c_status),
    ("controller_heartbeat", c_heartbeat),
    ("execute", c_execute),
    ("apply_map", c_apply_map),
    ("push_pull_clear_oob", c_push_pull_clear),
    ("match_by_parent_id", c_match_by_id),
    ("replay_guard", c_replay),
    ("date_window", c_date_window),
    ("targets_fold_refuse", c_targets),
    ("undecodable_request", c_undecodable),
    ("task_retry", c_retry),
    ("task_flags", c_task_flags),
    ("mistyped_flags", c_mistyped_flags),
    ("replays_other_channels", c_more_replays),
    ("abort_task_channel", c_abort_task),
    ("abort_control_channel", c_abort_direct),
    ("engine_side", c_fake_engine),
    ("engine_side_rules", c_fake_engine_rules),
    ("interrupt", c_interrupt),
    ("new_engine", c_new_engine),
    ("engine_death", c_engine_death),
    ("shutdown_engine", c_shutdown_engine),
    ("shutdown_busy_engine", c_shutdown_busy),
    ("abort_saturated_scheduler", c_abort_saturated),
    ("envelopes", c_envelopes),
]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: check_protocol.py LP_CLIENT_JSON [CHECK...]")
    c = CheckedClient.from_file(sys.argv[1])
    only = set(sys.argv[2:])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if engines_of(c) == [0, 1, 2, 3]:
                break
        except AssertionError:
            pass
        c.take("notification", lambda m: m.msg_type == "engine_registered", 0.5)
    else:
        say("FAIL cluster: 4 engines not registered within 20 s")
        return 1
    for name, fn in CHECKS:
        if not only or name in only:
            run(name, fn, c)
    if c.dropped:
        say("note: client dropped %r" % dict(c.dropped))
    say("%d of %d checks failed: %s" % (len(FAILS), len(CHECKS) if not only else len(only),
                                         " ".join(FAILS) or "-"))
    c.close()
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
