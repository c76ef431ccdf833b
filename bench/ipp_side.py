"""ipp_side.py - the ipyparallel side of the benchmark suite

Usage: /usr/bin/python3 ipp_side.py <workload> PROFILE_DIR [arguments]

The same workloads as bench/lp_bench.c, written the way an ipyparallel user
would (DirectView.apply_sync, LoadBalancedView.apply_async / map, push,
pull, scatter, gather), each printing "key value" lines for bench/bench.py.
Run with Debian's /usr/bin/python3 (python3-ipyparallel). The cluster is
started by `startup` (ipcluster start --daemonize) and stopped by
bench/bench.py (ipcluster stop, then it waits for every process).
"""
import os
import random
import signal
import subprocess
import sys
import time

import ipyparallel as ipp

WAIT = 600


def noop():
    pass


def identity(x):
    return x


def count_hits(n, seed):
    # Same algorithm as lp_bench.c's s_count_hits
    import random
    random.seed(seed)
    rnd = random.random
    hits = 0
    for _ in range(n):
        x, y = rnd(), rnd()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def out(key, value):
    print(f"{key} {value}", flush=True)


def client(profile_dir, n=1, timeout=120):
    rc = ipp.Client(profile_dir=profile_dir, timeout=timeout)
    t_end = time.monotonic() + timeout
    while len(rc.ids) < n:
        if time.monotonic() > t_end:
            raise SystemExit(f"only {len(rc.ids)} of {n} engines after {timeout} s")
        time.sleep(0.01)
    return rc


def startup(profile_dir, n, timeout=None):
    n = int(n)
    timeout = float(timeout) if timeout else 120.0
    cfile = os.path.join(profile_dir, "security", "ipcontroller-client.json")
    t0 = time.monotonic()
    rc_start = subprocess.run(
        ["ipcluster", "start", "-n", str(n), "--daemonize",
         "--profile-dir", profile_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon_s = time.monotonic() - t0
    if rc_start.returncode != 0:
        raise SystemExit("ipcluster start failed")
    while not os.path.exists(cfile):
        if time.monotonic() - t0 > timeout:
            raise SystemExit("no ipcontroller-client.json")
        time.sleep(0.01)
    rc = None
    while rc is None:
        try:
            rc = ipp.Client(profile_dir=profile_dir, timeout=30)
        except Exception:                      # file half-written
            if time.monotonic() - t0 > timeout:
                raise
            time.sleep(0.05)
    while len(rc.ids) < n:
        if time.monotonic() - t0 > timeout:
            out("registered", len(rc.ids))
            out("timeout_s", timeout)
            raise SystemExit(f"only {len(rc.ids)} of {n} engines after {timeout} s")
        time.sleep(0.01)
    out("daemon_s", f"{daemon_s:.4f}")
    out("startup_s", f"{time.monotonic() - t0:.4f}")
    rc.close()


def roundtrips(view, calls, prefix):
    for _ in range(50):
        view.apply_sync(noop)
    t = []
    for _ in range(calls):
        t0 = time.perf_counter()
        view.apply_sync(noop)
        t.append((time.perf_counter() - t0) * 1e6)
    t.sort()
    out(f"{prefix}_median_us", f"{t[len(t) // 2]:.1f}")
    out(f"{prefix}_p99_us", f"{t[int(len(t) * 0.99)]:.1f}")


def main():
    what, profile_dir = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    if what == "startup":
        return startup(profile_dir, *args)
    rc = client(profile_dir)
    if what == "rtt":
        roundtrips(rc[rc.ids[0]], int(args[0]), "rtt")
    elif what == "all":
        roundtrips(rc[:], int(args[0]), "all")
    elif what == "lb":
        lview = rc.load_balanced_view()
        for _ in range(50):
            lview.apply_sync(noop)
        tasks = int(args[0])
        t0 = time.perf_counter()
        ars = [lview.apply_async(noop) for _ in range(tasks)]
        for ar in ars:
            ar.get(WAIT)
        out("tasks_per_s", f"{tasks / (time.perf_counter() - t0):.0f}")
    elif what == "lbmap":
        lview = rc.load_balanced_view()
        items, chunk = int(args[0]), int(args[1])
        t0 = time.perf_counter()
        res = lview.map(identity, range(1, items + 1), chunksize=chunk).get(WAIT)
        elapsed = time.perf_counter() - t0
        assert len(res) == items
        out("items_per_s", f"{items / elapsed:.0f}")
    elif what == "push":
        mb, kind = int(args[0]), args[1]
        nbytes = mb * 1000 * 1000
        if kind == "f64":
            import numpy
            value = numpy.arange(nbytes // 8, dtype=numpy.float64)
        else:
            value = b"x" * nbytes
        dv = rc[rc.ids[0]]
        t0 = time.perf_counter()
        dv.push({"big": value}, block=True)
        push_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = dv.pull("big", block=True)
        pull_s = time.perf_counter() - t0
        got = back.nbytes if kind == "f64" else len(back)
        assert got == nbytes, got
        dv.execute("big = None; import gc; gc.collect()", block=True)
        out("push_mb_s", f"{mb / push_s:.1f}")
        out("pull_mb_s", f"{mb / pull_s:.1f}")
    elif what == "scatter":
        count = int(args[0])
        kind = args[1] if len(args) > 1 else "ints"
        dv = rc[:]
        if kind == "numpy":             # the typed-array counterpart
            import numpy
            seq = numpy.arange(1, count + 1, dtype=numpy.int64)
        else:
            seq = list(range(1, count + 1))
        t0 = time.perf_counter()
        dv.scatter("part", seq, block=True)
        scatter_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        whole = dv.gather("part", block=True)
        gather_s = time.perf_counter() - t0
        assert len(whole) == count and whole[0] == 1 and whole[-1] == count, len(whole)
        dv.execute("part = None", block=True)
        out("scatter_s", f"{scatter_s:.4f}")
        out("gather_s", f"{gather_s:.4f}")
    elif what == "pi":
        samples = int(args[0])
        ids = rc.ids
        per = samples // len(ids)
        t0 = time.perf_counter()
        ars = [rc[e].apply_async(count_hits, per, i + 1) for i, e in enumerate(ids)]
        hits = sum(ar.get(WAIT) for ar in ars)
        out("pi_s", f"{time.perf_counter() - t0:.4f}")
        t0 = time.perf_counter()
        serial_hits = count_hits(samples, 1)
        out("pi_serial_s", f"{time.perf_counter() - t0:.4f}")
        out("pi_value", f"{4.0 * hits / (per * len(ids)):.5f}")
        out("pi_serial_value", f"{4.0 * serial_hits / samples:.5f}")
    elif what == "kill":
        eid = rc.ids[-1]
        pid = rc[eid].apply_sync(os.getpid)
        before = len(rc.ids)
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while eid in rc.ids:
            if time.perf_counter() - t0 > 120:
                raise SystemExit("engine still listed after 120 s")
            time.sleep(0.0005)
        out("kill_detect_ms", f"{(time.perf_counter() - t0) * 1000:.1f}")
        out("engines_before", before)
    else:
        raise SystemExit(f"unknown workload {what}")
    rc.close()


if __name__ == "__main__":
    main()
