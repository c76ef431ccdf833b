#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpus of the fuzz targets.

Run from anywhere: python3 tests/fuzz/make_corpus.py. Needs nothing but
Python (msgpack is packed by hand, as docs/protocol.md describes it).
corpus/codec/: one msgpack frame, then "#LPF" and buffer frames.
corpus/wire/: a flag byte, then header, parent, metadata, content and
buffer frames separated by "#LPF" (see fuzz_wire.c).
"""
import os
import struct

SEP = b"#LPF"
HERE = os.path.dirname(os.path.abspath(__file__))


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, Ext):
        payload = v.payload
        return b"\xd8" + struct.pack("b", v.type) + payload    # fixext 16
    if isinstance(v, list):
        out = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return out + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        out = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return out + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


class Ext:
    def __init__(self, type_, dtype, first, pieces, flags=0):
        self.type = type_
        self.payload = struct.pack(">BBHIII", dtype, flags, 0, first, pieces, 0)


def header(msg_type="execute_request", **extra):
    h = {"msg_id": "0123456789abcdef0123456789abcdef", "msg_type": msg_type,
         "session": "fedcba9876543210fedcba9876543210", "username": "fuzz",
         "date": "2026-11-29T06:27:42.123456Z", "version": "1.0"}
    h.update(extra)
    return h


def write(folder, name, data):
    path = os.path.join(HERE, "corpus", folder)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def frames(*parts):
    return SEP.join(parts)


f64 = struct.pack("<3d", 1.0, 2.5, -3.0)
i32 = struct.pack("<4i", 1, -2, 3, -4)
codec = {
    "empty_map": [pack({})],
    "empty_array": [pack([])],
    "scalars": [pack({"nil": None, "t": True, "f": False, "i": 5, "neg": -7,
                      "big": 2**63 + 5, "min": -2**63, "pi": 3.25, "s": "h\u00e9llo",
                      "b": b"\x00\xff"})],
    "float32": [b"\x92\xca" + struct.pack(">f", 1.5) + b"\xcb" + struct.pack(">d", float("nan"))],
    "nested": [pack({"a": [1, [2, [3, {"b": [4, 5, {"c": "d"}]}]]]})],
    "deep": [b"\x91" * 20 + b"\x01"],
    "typed_f64": [pack({"x": Ext(1, 1, 0, 1)}), f64],
    "typed_i32_two_pieces": [pack([Ext(1, 4, 0, 2)]), i32[:8], i32[8:]],
    "typed_empty": [pack([Ext(1, 5, 0, 0)])],
    "bytes_ext": [pack({"blob": Ext(2, 0, 0, 1)}), b"\x01\x02\x03" * 10],
    "str16": [pack("x" * 300)],
    "text_ext": [pack({"s": Ext(2, 0, 0, 2, flags=1)}), "h\u00e9llo ".encode() * 10, b"world"],
    "sequence_ext": [pack([Ext(1, 3, 0, 1, flags=1), Ext(1, 1, 1, 1, flags=1)]),
                     struct.pack("<3q", 1, -2, 3), f64],
    "map16": [pack({str(i): i for i in range(20)})],
    "array16": [pack(list(range(40)))],
    "int_widths": [b"\x96\xcc\xff\xcd\xff\xff\xce\xff\xff\xff\xff\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00"],
    "bin16_str8": [b"\x92\xc5\x00\x03abc\xd9\x02hi"],
    # ext 3: a table in pieces, holding an ext 2 of the buffer before it
    "table_ext": [pack({"t": Ext(3, 0, 1, 2)}), b"\x01\x02\x03" * 10,
                  pack([1, "two", Ext(2, 0, 0, 1)])[:5], pack([1, "two", Ext(2, 0, 0, 1)])[5:]],
    "table_ext_top": [pack(Ext(3, 0, 0, 1)), pack({str(i): i for i in range(20)})],
}
for name, parts in codec.items():
    write("codec", name, frames(*parts))

content_exec = pack({"code": "return 1 + 1"})
wire = {
    "execute": [header(targets=[0]), {}, {}, content_exec],
    "apply_typed": [header("apply_request", targets=[1, 2]), {}, {},
                    pack({"fn": "function(t) return #t end", "args": [Ext(1, 1, 0, 1)]}), f64],
    "reply": [header("execute_reply"), header(), {"engine": 3, "status": "ok",
              "stdout": "x"}, pack({"status": "ok", "values": [2]})],
    "error_reply": [header("apply_reply"), header(), {"engine": 0, "status": "error",
                    "ename": "Aborted"}, pack({"status": "error", "ename": "Aborted",
                                               "evalue": "aborted", "traceback": ""})],
    "task_flags": [header(retries=1, timeout=100, time_limit=50, after=["a" * 32],
                          follow=[], success=True, failure=False), {}, {}, content_exec],
    "abort": [header("abort_request"), {}, {}, pack({"msg_ids": ["a" * 32, "b" * 32]})],
    "bytes_meta": [header("stream"), header(), {"stdout": Ext(2, 0, 0, 1)},
                   pack({"name": "stdout", "text": "hi"}), b"out" * 20],
}
for name, parts in wire.items():
    packed = [p if isinstance(p, bytes) else pack(p) for p in parts]
    write("wire", name, b"\x00" + frames(*packed))
# a few for the other paths: bad signature, no delimiter, no routing
packed = [pack(p) if not isinstance(p, bytes) else p for p in wire["execute"]]
write("wire", "bad_signature", b"\x01" + frames(*packed))
write("wire", "no_delimiter", b"\x02" + frames(*packed))
write("wire", "no_routing", b"\x04" + frames(*packed))
write("wire", "too_few_frames", b"\x00" + frames(pack(header()), b"\x80"))
