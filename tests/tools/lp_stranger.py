#!/usr/bin/python3
"""lp_stranger.py - a peer without the cluster's keys, for the CURVE tests.

  lp_stranger.py sub ENDPOINT [SERVER_KEY]
      A SUB socket that subscribes to everything on ENDPOINT: without keys
      (NULL mechanism), or with SERVER_KEY and a key pair of its own (a
      CURVE client whose key the controller does not know). Prints "ready"
      once it has tried a connection (TCP connected, and any handshake
      ended), then counts what arrives until SIGTERM, and prints
      "received N".
  lp_stranger.py flood ENDPOINT N MB [raw|zmq]
      N connections that each send one MB-megabyte frame. raw (default):
      plain TCP, a ZMTP 3.0 greeting asking for CURVE then a frame header
      announcing MB megabytes and the bytes themselves, as a stranger who
      knows the protocol would; zmq: N DEALERs without keys sending an MB
      frame (libzmq's own behaviour). Prints "sent B bytes" (raw: what the
      kernel accepted before the controller closed or stopped reading,
      within 5 s per connection) and exits.
  lp_stranger.py flood ENDPOINT N MB null SOCKET_TYPE
      As raw, for a port without CURVE: a ZMTP 3.0 greeting asking for
      NULL, a READY command naming SOCKET_TYPE (DEALER, SUB, PUB: what the
      port accepts), then a message frame announcing MB megabytes and
      its bytes.
"""
import signal
import socket
import sys
import threading

import zmq


def tcp_address(endpoint):
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    return host.strip("[]"), int(port)


def cmd_sub(endpoint, server_key=None):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    if server_key:
        public, secret = zmq.curve_keypair()
        sub.curve_serverkey = server_key.encode()
        sub.curve_publickey = public
        sub.curve_secretkey = secret
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = sub.get_monitor_socket()
    sub.connect(endpoint)
    # ready once the first connection ended its handshake one way or the other
    done = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_DISCONNECTED)
    events = []
    while monitor.poll(10000):
        frames = monitor.recv_multipart()
        event = int.from_bytes(frames[0][:2], "little")
        events.append(event)
        if event & done:
            break
    print("ready", " ".join("0x%x" % e for e in events), flush=True)
    count = 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        if sub.poll(100):
            sub.recv_multipart()
            count += 1
    while sub.poll(200):        # anything still on its way
        sub.recv_multipart()
        count += 1
    print("received", count, flush=True)
    sub.close(0)
    monitor.close(0)
    ctx.term()


def greeting():
    g = bytes([0xFF]) + bytes(8) + bytes([0x7F, 3, 0])
    g += b"CURVE".ljust(20, b"\0") + bytes([0]) + bytes(31)
    assert len(g) == 64
    return g


def greeting_null():
    g = bytes([0xFF]) + bytes(8) + bytes([0x7F, 3, 0])
    g += b"NULL".ljust(20, b"\0") + bytes([0]) + bytes(31)
    assert len(g) == 64
    return g


def ready(socket_type):
    # ZMTP 3.0 READY: command name, then the property Socket-Type
    name = b"Socket-Type"
    body = bytes([5]) + b"READY" + bytes([len(name)]) + name
    body += len(socket_type).to_bytes(4, "big") + socket_type.encode()
    return bytes([0x04, len(body)]) + body                   # short command frame


def raw_one(endpoint, size, sent, index, socket_type=None):
    s = socket.create_connection(tcp_address(endpoint), timeout=5)
    s.settimeout(5)
    total = 0
    try:
        if socket_type:
            s.sendall(greeting_null() + ready(socket_type))
            total += 64
            s.sendall(bytes([0x02]) + size.to_bytes(8, "big"))   # long message frame
        else:
            s.sendall(greeting())
            total += 64
            s.sendall(bytes([0x06]) + size.to_bytes(8, "big"))   # long command frame
        total += 9
        chunk = bytes(1 << 20)
        left = size
        while left > 0:
            n = s.send(chunk[:min(left, len(chunk))])
            total += n
            left -= n
    except OSError:
        pass                    # closed by the controller, or it stopped reading
    sent[index] = total
    s.close()


def cmd_flood(endpoint, n, mb, mode="raw", socket_type=None):
    size = mb * 1024 * 1024
    if mode == "zmq":
        ctx = zmq.Context()
        socks = []
        for _ in range(n):
            d = ctx.socket(zmq.DEALER)
            d.linger = 0
            d.sndtimeo = 5000
            d.connect(endpoint)
            socks.append(d)
        payload = bytes(size)
        for d in socks:
            try:
                d.send(payload, copy=False)
            except zmq.Again:
                pass
        # give libzmq's I/O thread its chance to try the handshakes
        poller_wait = ctx.socket(zmq.PAIR)
        poller_wait.poll(3000)   # bounded: nothing ever arrives here
        poller_wait.close(0)
        for d in socks:
            d.close(0)
        ctx.term()
        print("sent (queued) %d bytes" % (n * size), flush=True)
        return
    sent = [0] * n
    if mode == "null" and not socket_type:
        raise SystemExit("flood ... null needs a SOCKET_TYPE")
    threads = [threading.Thread(target=raw_one, args=(endpoint, size, sent, i,
                                                      socket_type if mode == "null" else None))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("sent %d bytes" % sum(sent), flush=True)


def main(argv):
    if len(argv) >= 2 and argv[0] == "sub":
        cmd_sub(argv[1], argv[2] if len(argv) > 2 else None)
    elif len(argv) >= 4 and argv[0] == "flood":
        cmd_flood(argv[1], int(argv[2]), int(argv[3]), argv[4] if len(argv) > 4 else "raw",
                  argv[5] if len(argv) > 5 else None)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
