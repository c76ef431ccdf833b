"""bench.py - luaparallel beside ipyparallel, in one run, on one machine

Usage: /usr/bin/python3 bench/bench.py --build DIR [--quick] [-n N]

Run through `./cluster.sh bench [--quick] [-n N]`, which builds and checks
the Debian packages first. For every workload it runs luaparallel
(bench/lp_bench.c, public C API) and ipyparallel (bench/ipp_side.py) one
after the other with the same number of engines, repeats (3 times, or once
with --quick), and reports median [min .. max]. The raw ZeroMQ program
(bench/zmq_baseline.c) gives the physical limit where one applies.

Processes: every cluster is started with a unique LPBENCH_TAG in its
environment; the pids of a cluster are the processes carrying its tag
(found in /proc/*/environ). They are stopped the way a user stops them
(SIGTERM to lpcontroller, `ipcluster stop`) and the stop time runs until
every one of them is gone (a zombie counts as gone: it has exited). Any
left after a deadline get SIGKILL, by pid. Nothing is left running.

Output: the table on stdout, bench/results/latest.csv + latest.png (full
run) or quick.csv + quick.png (--quick), and the table in
docs/performance.md (full run) between the bench markers.
"""
import argparse
import csv
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
IPP_SIDE = os.path.join(HERE, "ipp_side.py")
RUN_ID = uuid.uuid4().hex[:12]
TMP = tempfile.mkdtemp(prefix="lpbench-")
_tags = []          # every tag started in this run, for the final clean-up
_counter = [0]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def new_tag():
    _counter[0] += 1
    tag = f"{RUN_ID}-{_counter[0]}"
    _tags.append(tag)
    return tag


def tagged_pids(tag):
    """Pids of live (non-zombie) processes whose environment holds our tag."""
    needle = f"LPBENCH_TAG={tag}\0".encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read() + b"\0" and alive(int(name)):
                    pids.append(int(name))
        except OSError:
            pass
    return pids


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_gone(pids, deadline_s):
    t_end = time.monotonic() + deadline_s
    while any(alive(p) for p in pids):
        if time.monotonic() > t_end:
            return False
        time.sleep(0.001)
    return True


def kill_tag(tag):
    for pid in tagged_pids(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def classify(tag):
    """{'controller': [pids], 'engine': [...], 'nanny': [...], 'other': [...]}"""
    out = {"controller": [], "engine": [], "nanny": [], "other": []}
    for pid in tagged_pids(tag):
        cmd = cmdline(pid)
        if "ipyparallel.engine.nanny" in cmd:
            out["nanny"].append(pid)
        elif "ipyparallel.engine" in cmd or "lpengine" in cmd.split(" ")[0]:
            out["engine"].append(pid)
        elif "ipyparallel.controller" in cmd or "lpcontroller" in cmd.split(" ")[0]:
            out["controller"].append(pid)
        else:
            out["other"].append(pid)
    return out


def env_for(tag):
    env = dict(os.environ)
    env["LPBENCH_TAG"] = tag
    env["IPYTHONDIR"] = os.path.join(TMP, "ipython")
    env.pop("LP_HOME", None)
    return env


def run_kv(cmd, env, timeout, check=True):
    """Runs cmd, returns its 'key value' lines as a dict of floats."""
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    values = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = float(parts[1])
            except ValueError:
                pass
    if p.returncode != 0 and check:
        raise RuntimeError(f"{' '.join(cmd[:3])}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return values


# ---------------------------------------------------------------- clusters

class Cluster:
    """One running cluster of either system, started in its own profile."""

    def __init__(self, system, n, build, scheme=None, timeout=120):
        self.system, self.n, self.build, self.scheme = system, n, build, scheme
        self.tag = new_tag()
        self.env = env_for(self.tag)
        self.dir = os.path.join(TMP, f"{system}-{self.tag}")
        os.makedirs(self.dir)
        self.timeout = timeout
        self.started = False

    def start(self, check=True):
        if self.system == "lp":
            cmd = [os.path.join(self.build, "lp_bench"), "startup",
                   os.path.join(self.build, "lpcontroller"), self.dir, str(self.n)]
            if self.scheme:
                cmd += ["--scheduler", self.scheme]
        else:
            if self.scheme:
                with open(os.path.join(self.dir, "ipcontroller_config.py"), "w") as f:
                    f.write(f"c.TaskScheduler.scheme_name = {self.scheme!r}\n")
            cmd = [PY, IPP_SIDE, "startup", self.dir, str(self.n), str(self.timeout)]
        self.started = True
        return run_kv(cmd, self.env, self.timeout + 60, check)

    def run(self, *args, timeout=900):
        if self.system == "lp":
            cmd = [os.path.join(self.build, "lp_bench"), args[0], self.client_file()]
        else:
            cmd = [PY, IPP_SIDE, args[0], self.dir]
        cmd += [str(a) for a in args[1:]]
        return run_kv(cmd, self.env, timeout)

    def client_file(self):
        return os.path.join(self.dir, "security", "lp-client.json")

    def rss(self):
        """(controller MB summed, engine MB mean, nanny MB mean, n engines)"""
        c = classify(self.tag)
        mean = lambda pids: (sum(rss_kb(p) for p in pids) / len(pids) / 1024) if pids else 0.0
        ctrl = sum(rss_kb(p) for p in c["controller"]) / 1024
        return ctrl, mean(c["engine"]), mean(c["nanny"]), len(c["engine"])

    def engine_pss(self):
        """Mean PSS in MB of an engine (plus its nanny for ipyparallel)."""
        c = classify(self.tag)
        total = sum(pss_kb(p) for p in c["engine"] + c["nanny"])
        return total / max(len(c["engine"]), 1) / 1024

    def stop(self):
        """Stops as a user would; seconds until every process is gone."""
        pids = tagged_pids(self.tag)
        t0 = time.monotonic()
        if self.system == "lp":
            try:
                with open(os.path.join(self.dir, "pid", "lpcontroller.pid")) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (OSError, ValueError) as e:
                log(f"lp stop: {e}")
        else:
            subprocess.run(["ipcluster", "stop", "--profile-dir", self.dir],
                           env=self.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300)
        ok = wait_gone(pids, 300)
        elapsed = time.monotonic() - t0
        if not ok:
            log(f"{self.system}: processes left after stop; SIGKILL by pid")
        kill_tag(self.tag)
        self.started = False
        return elapsed if ok else None

    def cleanup(self):
        kill_tag(self.tag)


# ---------------------------------------------------------------- results

class Row:
    def __init__(self, key, label, unit, better, lp=None, ipp=None, note=""):
        self.key, self.label, self.unit, self.better = key, label, unit, better
        self.lp = lp or []
        self.ipp = ipp or []
        self.note = note           # why ipyparallel (or a part) did not run
        self.lp_note = ""          # why luaparallel has no figure
        self.limit = None          # raw limit in the row's unit
        self.share = None          # our share of the limit (0..1)
        self.target = ""           # text of the target
        self.ok = None             # True / False / None (no target)

    @staticmethod
    def stat(values):
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    def ratio(self):
        a, b = self.stat(self.lp), self.stat(self.ipp)
        if not a or not b or a[0] <= 0 or b[0] <= 0:
            return None
        return b[0] / a[0] if self.better == "lower" else a[0] / b[0]


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_stat(values):
    s = Row.stat(values)
    if not s:
        return "-"
    if len(values) == 1:
        return fmt(s[0])
    return f"{fmt(s[0])} [{fmt(s[1])}..{fmt(s[2])}]"


def table_lines(rows, markdown):
    head = ["workload", "unit", "luaparallel", "ipyparallel", "ratio (x better)",
            "raw limit", "our share of limit", "target", "status"]
    body = []
    for r in rows:
        ratio = r.ratio()
        ipp = fmt_stat(r.ipp) if r.ipp else (f"n/a: {r.note}" if r.note else "-")
        status = {True: "PASS", False: "MISS", None: ""}[r.ok]
        lp = fmt_stat(r.lp) if r.lp else (f"FAILED: {r.lp_note}" if r.lp_note else "-")
        body.append([r.label, r.unit, lp, ipp,
                     f"{ratio:.1f}x" if ratio else "-", fmt(r.limit) if r.limit else "-",
                     f"{r.share * 100:.0f}%" if r.share is not None else "-",
                     r.target, status])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in body]
        return lines
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    widths = [min(w, 60) for w in widths]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(head), line(["-" * w for w in widths])] + [line(row) for row in body]


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "workload", "unit", "better", "lp_median", "lp_min", "lp_max",
                    "lp_n", "ipp_median", "ipp_min", "ipp_max", "ipp_n", "ratio",
                    "raw_limit", "share_of_limit", "target", "status", "note"])
        for r in rows:
            a, b = Row.stat(r.lp) or (None,) * 3, Row.stat(r.ipp) or (None,) * 3
            ratio = r.ratio()
            w.writerow([r.key, r.label, r.unit, r.better, *a, len(r.lp), *b, len(r.ipp),
                        f"{ratio:.3f}" if ratio else "", r.limit or "",
                        f"{r.share:.3f}" if r.share is not None else "", r.target,
                        {True: "pass", False: "miss", None: ""}[r.ok],
                        "; ".join(x for x in (r.lp_note, r.note) if x)])


def write_png(rows, path):
    if not shutil.which("gnuplot"):
        log("gnuplot missing (apt-get install gnuplot-nox): no chart")
        return False
    data = os.path.join(TMP, "ratios.dat")
    n = 0
    with open(data, "w") as f:
        for r in rows:
            ratio = r.ratio()
            if ratio:
                label = r.label.replace('"', "'")
                f.write(f'{n} "{label}" {ratio:.4f}\n')
                n += 1
    if not n:
        return False
    script = f"""
set terminal png size 1400,800 noenhanced
set output '{path}'
set title 'luaparallel vs ipyparallel, same run: how many times better (log scale; 1 = equal)'
set logscale y
set yrange [0.1:*]
set grid ytics
set style fill solid 0.8
set boxwidth 0.7
set xtics rotate by -40 font ',9'
set bmargin 12
set rmargin 12
set key off
plot '{data}' using 1:3:xtic(2) with boxes lc rgb '#3070b0', \\
     '' using 1:3:(sprintf('%.2g', $3)) with labels offset 0,0.7 font ',8', \\
     1 with lines lc rgb 'red' dt 2
"""
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if p.returncode != 0:
        log(f"gnuplot: {p.stderr.strip()}")
        return False
    return True


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GB RAM, Linux {platform.release()}"


def commit():
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                               capture_output=True, text=True).stdout.strip()
        return c + (" (+ uncommitted changes in src/)" if dirty else "")
    except OSError:
        return "?"


def update_performance_md(rows, header, png_ok):
    path = os.path.join(ROOT, "docs", "performance.md")
    begin, end = "<!-- bench:table -->", "<!-- /bench:table -->"
    block = [begin, "", *header, ""]
    block += table_lines(rows, markdown=True)
    if png_ok:
        block += ["", "![ratios](../bench/results/latest.png)",
                  "", "Data: [bench/results/latest.csv](../bench/results/latest.csv)."]
    block += ["", end]
    text = open(path).read() if os.path.exists(path) else f"# Performance\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1]
        text = pre + "\n".join(block) + post
    else:
        text += "\n" + "\n".join(block) + "\n"
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- the run

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--skip-ipp", action="store_true", help="luaparallel only (debugging)")
    ap.add_argument("--replot", metavar="CSV", help="only redraw the PNG of a results CSV")
    opt = ap.parse_args()
    if opt.replot:
        class R:                                # the ratio column is all the chart needs
            def __init__(self, label, ratio):
                self.label, self._r = label, ratio

            def ratio(self):
                return self._r
        with open(opt.replot) as f:
            rows = [R(d["workload"], float(d["ratio"])) for d in csv.DictReader(f) if d["ratio"]]
        ok = write_png(rows, os.path.splitext(opt.replot)[0] + ".png")
        shutil.rmtree(TMP, ignore_errors=True)
        return 0 if ok else 1
    n, quick = opt.n, opt.quick
    reps = 1 if quick else 3
    build = os.path.abspath(opt.build)
    t_run = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc)
    commit_at_start = commit()          # the tree the binaries were built from
    rows = []
    clusters = []

    def rowk(key):
        return next(r for r in rows if r.key == key)

    def add(key, label, unit, better, note=""):
        rows.append(Row(key, label, unit, better, note=note))
        return rows[-1]

    # counts
    rtt_calls = 1000 if quick else 2000
    all_calls = 200 if quick else 1000
    lb_ipp = 1000 if quick else 10000
    lb_lp = 10000 if quick else 100000
    sch_ipp = 2000
    big_mb = 100
    scatter_n = 10 ** 6
    pi_n = 10 ** 7
    systems = ["lp"] if opt.skip_ipp else ["lp", "ipp"]
    skip_note = "skipped (--skip-ipp)"

    try:
        # 0. raw ZeroMQ
        log("raw ZeroMQ baseline")
        raw = run_kv([os.path.join(build, "zmq_baseline")] + (["--quick"] if quick else []),
                     os.environ, 300)

        # 1. start-up and stop, fresh clusters, interleaved
        r_start = add("startup", f"start-up to {n} engines registered, seen by client", "s", "lower")
        r_stop = add("stop", f"stop until all processes gone ({n} engines)", "s", "lower")
        for i in range(reps):
            for sys_ in systems:
                log(f"start/stop {sys_} rep {i + 1}/{reps}")
                c = Cluster(sys_, n, build)
                clusters.append(c)
                v = c.start()
                (r_start.lp if sys_ == "lp" else r_start.ipp).append(v["startup_s"])
                s = c.stop()
                if s is not None:
                    (r_stop.lp if sys_ == "lp" else r_stop.ipp).append(s)

        # 2. the main clusters, side by side, workloads interleaved
        log("main clusters")
        main_c = {}
        for sys_ in systems:
            main_c[sys_] = Cluster(sys_, n, build)
            clusters.append(main_c[sys_])
            main_c[sys_].start()
        time.sleep(1)           # let start-up transients settle before RSS
        fresh = {s: main_c[s].rss() for s in systems}
        fresh_pss = {s: main_c[s].engine_pss() for s in systems}

        def both(row, workload, key, *args, scale=1.0, ipp_args=None):
            for i in range(reps):
                for sys_ in systems:
                    a = ipp_args if (sys_ == "ipp" and ipp_args is not None) else args
                    v = main_c[sys_].run(workload, *a)
                    (row.lp if sys_ == "lp" else row.ipp).append(v[key] * scale)

        def both_multi(rowkeys, workload, *args):
            for i in range(reps):
                for sys_ in systems:
                    v = main_c[sys_].run(workload, *args)
                    for row, key, scale in rowkeys:
                        (row.lp if sys_ == "lp" else row.ipp).append(v[key] * scale)

        log("no-op round trips")
        r_rtt = add("rtt_median", "no-op round trip, 1 engine (median)", "ms", "lower")
        r_p99 = add("rtt_p99", "no-op round trip, 1 engine (p99)", "ms", "lower")
        both_multi([(r_rtt, "rtt_median_us", 1e-3), (r_p99, "rtt_p99_us", 1e-3)], "rtt", rtt_calls)
        r_all = add("all_median", f"no-op apply on all {n} engines (median)", "ms", "lower")
        r_allp = add("all_p99", f"no-op apply on all {n} engines (p99)", "ms", "lower")
        both_multi([(r_all, "all_median_us", 1e-3), (r_allp, "all_p99_us", 1e-3)], "all", all_calls)

        log("load-balanced tasks (leastload)")
        ctrl_lb = [main_c["lp"].rss()[0]]      # before, then after each repetition
        r_lb = add("lb_leastload", f"load-balanced no-op tasks, leastload ({lb_lp:,} ours / {lb_ipp:,} ipp)",
                   "tasks/s", "higher")
        for i in range(reps):
            for sys_ in systems:
                v = main_c[sys_].run("lb", lb_lp if sys_ == "lp" else lb_ipp)
                (r_lb.lp if sys_ == "lp" else r_lb.ipp).append(v["tasks_per_s"])
                if sys_ == "lp":
                    ctrl_lb.append(main_c["lp"].rss()[0])
        r_map = add("lb_map", f"load-balanced map, chunksize 1 ({lb_lp:,} / {lb_ipp:,} items)",
                    "items/s", "higher")
        both(r_map, "lbmap", "items_per_s", lb_lp, 1, ipp_args=(lb_ipp, 1))

        log("push / pull")
        r_pb = add("push_bytes", f"push {big_mb} MB bytes to 1 engine", "MB/s", "higher")
        r_lb_ = add("pull_bytes", f"pull {big_mb} MB bytes from 1 engine", "MB/s", "higher")
        both_multi([(r_pb, "push_mb_s", 1), (r_lb_, "pull_mb_s", 1)], "push", big_mb, "bytes")
        r_pf = add("push_f64", f"push {big_mb} MB float64 array (numpy / typed)", "MB/s", "higher")
        r_lf = add("pull_f64", f"pull {big_mb} MB float64 array (numpy / typed)", "MB/s", "higher")
        both_multi([(r_pf, "push_mb_s", 1), (r_lf, "pull_mb_s", 1)], "push", big_mb, "f64")

        log("scatter / gather")
        r_sc = add("scatter", f"scatter 10^6 ints over {n} engines", "s", "lower")
        r_ga = add("gather", f"gather 10^6 ints from {n} engines", "s", "lower")
        both_multi([(r_sc, "scatter_s", 1), (r_ga, "gather_s", 1)], "scatter", scatter_n)

        log("Monte Carlo pi")
        r_pi = add("pi", f"Monte Carlo pi 10^7 samples on {n} engines", "s", "lower")
        r_pis = add("pi_serial", "Monte Carlo pi 10^7 serial (Lua 5.4 / CPython)", "s", "lower")
        both_multi([(r_pi, "pi_s", 1), (r_pis, "pi_serial_s", 1)], "pi", pi_n)

        log("memory")
        after = {s: main_c[s].rss() for s in systems}
        r_eng = add("engine_rss", "idle engine RSS (ipp: engine + nanny)", "MB", "lower")
        r_ctl = add("ctrl_rss", "controller RSS, fresh (ipp: hub + schedulers)", "MB", "lower")
        r_ctl2 = add("ctrl_rss_after", "controller RSS after the whole run", "MB", "lower")
        r_fill = add("ctrl_lb_fill", f"controller RSS growth, first {lb_lp:,} tasks (bounded caches fill)",
                     "MB", "lower", note="ours only")
        r_fill.lp.append(ctrl_lb[1] - ctrl_lb[0])
        r_flat = add("ctrl_lb_growth", f"controller RSS growth over the next {lb_lp * (reps - 1):,} tasks"
                     if reps > 1 else f"controller RSS growth over {lb_lp:,} tasks", "MB",
                     "lower", note="ours only")
        r_pss = add("engine_pss", "idle engine PSS (shared pages split; ipp: engine + nanny)", "MB", "lower")
        r_pss.lp.append(fresh_pss["lp"])
        if "ipp" in systems:
            r_pss.ipp.append(fresh_pss["ipp"])
        r_eng.lp.append(fresh["lp"][1])
        r_ctl.lp.append(fresh["lp"][0])
        r_ctl2.lp.append(after["lp"][0])
        r_flat.lp.append(ctrl_lb[-1] - (ctrl_lb[1] if reps > 1 else ctrl_lb[0]))
        if "ipp" in systems:
            r_eng.ipp.append(fresh["ipp"][1] + fresh["ipp"][2])
            r_ctl.ipp.append(fresh["ipp"][0])
            r_ctl2.ipp.append(after["ipp"][0])

        log("kill -9 of an engine")
        r_kill = add("kill", "kill -9 engine -> gone from client's ids", "ms", "lower")
        for sys_ in systems:
            v = main_c[sys_].run("kill")
            (r_kill.lp if sys_ == "lp" else r_kill.ipp).append(v["kill_detect_ms"])
        for sys_ in systems:
            main_c[sys_].stop()

        # 3. the other schemes: a fresh cluster each
        for scheme in ["lru", "plainrandom", "weighted", "twobin"]:
            log(f"scheme {scheme}")
            note = "" if not quick else "quick run: ipyparallel schemes only in the full bench"
            row = add(f"lb_{scheme}", f"load-balanced no-op tasks, {scheme} ({lb_lp:,} / {sch_ipp:,})",
                      "tasks/s", "higher", note=note)
            for sys_ in systems:
                if sys_ == "ipp" and quick:
                    continue
                c = Cluster(sys_, n, build, scheme=scheme)
                clusters.append(c)
                try:
                    c.start()
                    for i in range(reps):
                        v = c.run("lb", lb_lp if sys_ == "lp" else sch_ipp)
                        (row.lp if sys_ == "lp" else row.ipp).append(v["tasks_per_s"])
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    log(f"{sys_} {scheme}: {e}")
                    if sys_ == "lp":
                        row.lp_note = f"failed: {str(e)[-120:]}"
                    else:
                        row.note = f"failed: {str(e)[-120:]}"
                c.stop()

        # 4. registration of many engines
        reg_deadline = 15 if quick else 60
        for big in [64, 256, 1024]:
            log(f"registration of {big} engines")
            row = add(f"reg_{big}", f"start-up to {big} engines registered", "s", "lower")
            rstop = add(f"stop_{big}", f"stop {big} engines until all gone", "s", "lower")
            c = Cluster("lp", big, build, timeout=reg_deadline)
            c.env["LP_BENCH_DEADLINE"] = str(reg_deadline)
            clusters.append(c)
            v = c.start(check=False)
            if "startup_s" in v:
                row.lp.append(v["startup_s"])
            else:
                row.lp_note = (f"ours: only {v.get('registered', 0):.0f} of {big} registered "
                               f"after {reg_deadline} s")
                log(row.lp_note)
            s = c.stop()
            if s is not None:
                rstop.lp.append(s)
            if "ipp" not in systems:
                row.note = rstop.note = skip_note
            elif quick:
                row.note = rstop.note = "quick run: not run (ipyparallel takes ~94 s for 64)"
            elif big > 64:
                if row_64_ipp_failed[0]:
                    row.note = rstop.note = "not run: 64 engines did not register within 2 min"
                else:
                    est = rowk("reg_64").ipp[0] * big / 64 if rowk("reg_64").ipp else None
                    row.note = rstop.note = (f"not run: registration is linear, 64 took "
                                             f"{fmt(rowk('reg_64').ipp[0])} s, so {big} would take "
                                             f"~{fmt(est)} s > 2 min" if est else "not run")
            else:
                c = Cluster("ipp", big, build, timeout=120)
                clusters.append(c)
                try:
                    v = c.start()
                    row.ipp.append(v["startup_s"])
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    log(f"ipp {big} engines: {e}")
                    row_64_ipp_failed[0] = True
                    row.note = rstop.note = "did not register within 2 min"
                s = c.stop()
                if s is not None and row.ipp:
                    rstop.ipp.append(s)

        # ---- limits and targets
        rtt_limit = 2 * raw["rtt_median_us"] / 1000.0
        r_rtt.limit = rtt_limit
        r_rtt.share = rtt_limit / Row.stat(r_rtt.lp)[0]
        r_rtt.target = "<= 1.5 x 2 raw RTT"
        r_rtt.ok = Row.stat(r_rtt.lp)[0] <= 1.5 * rtt_limit
        r_p99.limit = 2 * raw["rtt_p99_us"] / 1000.0
        r_p99.share = r_p99.limit / Row.stat(r_p99.lp)[0]
        r_all.limit = rtt_limit
        r_all.share = rtt_limit / Row.stat(r_all.lp)[0]
        for r in rows:
            if r.key.startswith("lb_"):
                r.limit = raw["pipelined_per_s"]
                r.share = Row.stat(r.lp)[0] / r.limit
        r_lb.target = ">= 100 x ipp"
        for r in (r_pb, r_lb_, r_pf, r_lf):
            r.limit = raw["big_1mb_frames_mb_s"]
            r.share = Row.stat(r.lp)[0] / r.limit
        r_pb.target = r_lb_.target = ">= 10 x ipp"
        r_pi.limit = Row.stat(r_pis.lp)[0] / min(os.cpu_count() or 1, n)
        r_pi.share = r_pi.limit / Row.stat(r_pi.lp)[0]
        r_start.target, r_stop.target = ">= 50 x ipp", ">= 20 x ipp"
        r_eng.target = ">= 20 x ipp"
        r_ctl.target = r_ctl2.target = "<= 5% of ipp"
        r_flat.target = "flat (< 5 MB)"
        r_flat.ok = r_flat.lp[0] < 5.0
        if "ipp" in systems:
            for r, need in ((r_start, 50), (r_stop, 20), (r_lb, 100), (r_pb, 10), (r_lb_, 10),
                            (r_eng, 20), (r_ctl, 20), (r_ctl2, 20)):
                ratio = r.ratio()
                r.ok = ratio is not None and ratio >= need
        r1024 = rowk("reg_1024")
        r1024.target = "<= 10 s"
        r1024.ok = bool(r1024.lp) and r1024.lp[0] <= 10.0

        raw_rows = [
            ("raw ZeroMQ DEALER<->ROUTER round trip (median / p99)",
             f"{raw['rtt_median_us']:.0f} / {raw['rtt_p99_us']:.0f} us"),
            ("raw pipelined echoes (1000 in flight)", f"{raw['pipelined_per_s']:,.0f} /s"),
            ("raw 100 MB as one frame / in 1 MB frames / echoed as one frame",
             f"{raw['big_one_frame_mb_s']:.0f} / {raw['big_1mb_frames_mb_s']:.0f} / "
             f"{raw['big_echo_one_frame_mb_s']:.0f} MB/s"),
        ]
    finally:
        for c in clusters:
            c.cleanup()
        for tag in _tags:
            kill_tag(tag)

    # ---- output
    elapsed = time.monotonic() - t_run
    header = [
        f"Run: {started.strftime('%Y-%m-%d %H:%M UTC')}, commit {commit_at_start} (at the start), "
        f"{'quick' if quick else 'full'} bench, {n} engines, "
        f"{reps} repetition(s) per figure (median [min..max]), {elapsed:.0f} s in all.",
        f"Machine: {machine()}.",
        "ipyparallel: " + subprocess.run([PY, "-c", "import ipyparallel; print(ipyparallel.__version__)"],
                                         capture_output=True, text=True).stdout.strip()
        + " (Debian), luaparallel: build " + os.path.relpath(build, ROOT) + ".",
        "Ratio: how many times better luaparallel is (ipp/ours for times and sizes, "
        "ours/ipp for rates). Share of limit: fraction of the raw ZeroMQ figure we reach.",
        "",
    ] + [f"- {a}: {b}" for a, b in raw_rows]
    print()
    for line in header:
        print(line)
    print()
    for line in table_lines(rows, markdown=False):
        print(line)
    outdir = os.path.join(HERE, "results")
    os.makedirs(outdir, exist_ok=True)
    base = "quick" if quick else "latest"
    write_csv(rows, os.path.join(outdir, f"{base}.csv"))
    png_ok = write_png(rows, os.path.join(outdir, f"{base}.png"))
    with open(os.path.join(outdir, f"{base}.md"), "w") as f:
        f.write("\n".join(header + [""] + table_lines(rows, markdown=True)) + "\n")
    if not quick:
        update_performance_md(rows, header, png_ok)
    print()
    print(f"written: bench/results/{base}.csv, {base}.md" + (f", {base}.png" if png_ok else "")
          + ("" if quick else ", docs/performance.md"))
    missed = [r.label for r in rows if r.ok is False]
    print("targets missed: " + ("; ".join(missed) if missed else "none"))
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


row_64_ipp_failed = [False]

if __name__ == "__main__":
    sys.exit(main())
