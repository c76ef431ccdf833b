"""bench.py - luaparallel beside ipyparallel, in one run, on one machine

Usage: /usr/bin/python3 bench/bench.py --build DIR [--quick] [-n N]
           [--only GROUP,...] [--skip-ipp] [--docs]
       /usr/bin/python3 bench/bench.py --build DIR --docs-from bench/results/quick.md
       /usr/bin/python3 bench/bench.py --build DIR --replot bench/results/latest.csv

Run through `./cluster.sh bench [--quick] [-n N] [--only ...]`, which
installs the Debian packages and builds first. It measures raw ZeroMQ
(bench/zmq_baseline.c: direct, and through a relay process, the two hops a
request makes through the controller), then for every workload runs
luaparallel (bench/lp_bench.c, public C API) and ipyparallel
(bench/ipp_side.py) one after the other with the same number of engines,
repeats (3 times, or once with --quick), and reports median [min .. max],
the raw figure of the same run, issue 9's target and a status computed
from these figures: PASS, MISS, or FAILED when a figure it needs was not
measured (a workload that fails is reported, the run goes on).

--only runs some workload groups (startup, rtt, all, push, scatter, lb,
map, growth, pi, memory, kill, schemes, reg; the raw figures always) and
writes bench/results/partial.*.

Processes: every cluster is started with a unique LPBENCH_TAG in its
environment; the pids of a cluster are the processes carrying its tag
(found in /proc/*/environ). They are stopped the way a user stops them
(SIGTERM to lpcontroller, `ipcluster stop`) and the stop time runs until
every one of them is gone (a zombie counts as gone: it has exited). Any
left after a deadline get SIGKILL, by pid. Nothing is left running.

Output: the table on stdout, bench/results/latest.{csv,md,png} (full run)
or quick.* (--quick) or partial.* (--only), and the table in
docs/performance.md between the bench markers (full run, or --docs).
Exit status 1 when any measurement failed.
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
        lines = [x for x in p.stderr.strip().splitlines() if x.strip()]
        raise RuntimeError(f"exit {p.returncode}: {lines[-1][-200:] if lines else 'no message'}")
    return values


# ---------------------------------------------------------------- clusters

class Cluster:
    """One running cluster of either system, started in its own profile."""

    def __init__(self, system, n, build, scheme=None, timeout=120, extra=None):
        self.system, self.n, self.build, self.scheme = system, n, build, scheme
        self.extra = extra or []           # more lpcontroller options (ours only)
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
            cmd += self.extra
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
        self.status = None         # "PASS" / "MISS" / "FAILED" / None (no target)
        self.why = ""              # what a FAILED status lacked

    @staticmethod
    def stat(values):
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    def med(self, side="lp"):
        s = self.stat(self.lp if side == "lp" else self.ipp)
        return s[0] if s else None

    def ratio(self):
        a, b = self.stat(self.lp), self.stat(self.ipp)
        if not a or not b or a[0] <= 0 or b[0] <= 0:
            return None
        return b[0] / a[0] if self.better == "lower" else a[0] / b[0]


def times(k, x):
    return None if x is None else k * x


def judge(row, text, checks):
    """Sets row's target and status from checks: (name, value, op, bound)
    with op '>=', '<=' or '<'. A check with a missing value or bound (a
    measurement that failed or did not run) makes the row FAILED; else PASS
    when every check holds, MISS otherwise. Never set by hand."""
    row.target = text
    missing = [name for name, v, op, b in checks if v is None or b is None]
    if missing:
        row.status = "FAILED"
        row.why = "not measured: " + ", ".join(missing)
        return
    test = {">=": lambda v, b: v >= b, "<=": lambda v, b: v <= b, "<": lambda v, b: v < b}
    holds = [test[op](v, b) for name, v, op, b in checks]
    row.status = "PASS" if all(holds) else "MISS"


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
        lp = fmt_stat(r.lp) if r.lp else (f"FAILED: {r.lp_note}" if r.lp_note else "-")
        body.append([r.label, r.unit, lp, ipp,
                     f"{ratio:.1f}x" if ratio else "-", fmt(r.limit) if r.limit else "-",
                     f"{r.share * 100:.0f}%" if r.share is not None else "-",
                     r.target, r.status or ""])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in body]
        return lines
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(head)]
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
                        (r.status or "").lower(),
                        "; ".join(x for x in (r.lp_note, r.note, r.why) if x)])


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
set terminal png size 1500,1000 noenhanced
set output '{path}'
set title 'luaparallel vs ipyparallel, same run: how many times better (log scale; 1 = equal)'
set logscale y
set yrange [0.1:*]
set grid ytics
set style fill solid 0.8
set boxwidth 0.7
set xtics rotate by -40 font ',9'
set bmargin 20
set rmargin 22
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
    """The commit the measured tree is (LP_BENCH_COMMIT names it for a tree
    exported without .git, e.g. by git archive)."""
    if os.environ.get("LP_BENCH_COMMIT"):
        return os.environ["LP_BENCH_COMMIT"] + " (exported tree)"
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "src"],
                               capture_output=True, text=True).stdout.strip()
        if not c:
            return "? (not a git tree)"
        return c + (" (+ uncommitted changes in src/)" if dirty else "")
    except OSError:
        return "?"


def update_performance_md(block_lines):
    """Replaces the table between the bench markers of docs/performance.md."""
    path = os.path.join(ROOT, "docs", "performance.md")
    begin, end = "<!-- bench:table -->", "<!-- /bench:table -->"
    block = [begin, "", *block_lines, "", end]
    text = open(path).read() if os.path.exists(path) else f"# Performance\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1]
        text = pre + "\n".join(block) + post
    else:
        text += "\n" + "\n".join(block) + "\n"
    with open(path, "w") as f:
        f.write(text)


def docs_block(md_path):
    """The lines of a results .md (header and table), plus its chart and data."""
    base = os.path.splitext(os.path.basename(md_path))[0]
    lines = open(md_path).read().rstrip("\n").split("\n")
    if os.path.exists(os.path.join(HERE, "results", base + ".png")):
        lines += ["", f"![ratios](../bench/results/{base}.png)"]
    lines += ["", f"Data: [bench/results/{base}.csv](../bench/results/{base}.csv)."]
    return lines


# ---------------------------------------------------------------- the run

#  Workload groups, in the order they run; --only picks some (raw ZeroMQ
#  always runs: the targets need it and it takes seconds).
GROUPS = ["startup", "rtt", "all", "push", "scatter", "lb", "map", "growth", "pi",
          "memory", "kill", "schemes", "reg", "many"]
MAIN_GROUPS = {"rtt", "all", "push", "scatter", "lb", "map", "growth", "pi", "memory", "kill"}


def short(e):
    if isinstance(e, subprocess.TimeoutExpired):
        return f"timed out after {e.timeout:.0f} s"
    return str(e).strip().replace("\n", " ")[-160:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--skip-ipp", action="store_true", help="luaparallel only (debugging)")
    ap.add_argument("--only", metavar="GROUP,...",
                    help="run only these workload groups (" + ",".join(GROUPS) +
                    "); results go to bench/results/partial.*")
    ap.add_argument("--docs", action="store_true",
                    help="also write the table into docs/performance.md (a full run always does)")
    ap.add_argument("--docs-from", metavar="MD",
                    help="only copy a results .md (e.g. bench/results/quick.md) into docs/performance.md")
    ap.add_argument("--replot", metavar="CSV", help="only redraw the PNG of a results CSV")
    opt = ap.parse_args()
    if opt.docs_from:
        update_performance_md(docs_block(opt.docs_from))
        print("written: docs/performance.md")
        shutil.rmtree(TMP, ignore_errors=True)
        return 0
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
    if opt.only:
        only = [g.strip() for g in opt.only.split(",") if g.strip() and g.strip() != "raw"]
        bad = [g for g in only if g not in GROUPS]
        if bad:
            ap.error(f"--only: unknown group(s) {', '.join(bad)}; groups: raw,{','.join(GROUPS)}")
        run_groups = set(only)
    else:
        run_groups = set(GROUPS)
    want = lambda g: g in run_groups
    n, quick = opt.n, opt.quick
    reps = 1 if quick else 3
    build = os.path.abspath(opt.build)
    wl_timeout = 240 if quick else 900       # one workload of one system
    budget_s = 250 if quick else None        # quick: skip the optional groups past this
    t_run = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc)
    commit_at_start = commit()          # the tree the binaries were built from
    rows = []
    clusters = []

    def rowk(key):
        return next((r for r in rows if r.key == key), None)

    def add(key, label, unit, better, note=""):
        if opt.skip_ipp and not note:
            note = "skipped (--skip-ipp)"
        rows.append(Row(key, label, unit, better, note=note))
        return rows[-1]

    # counts
    rtt_calls = 1000 if quick else 2000
    all_calls = 200 if quick else 1000
    lb_ipp = 1000 if quick else 10000
    lb_lp = 20000 if quick else 100000
    growth_tasks = 100000
    sch_ipp = 2000
    big_mb = 100
    scatter_n = 10 ** 6
    pi_n = 10 ** 7
    systems = ["lp"] if opt.skip_ipp else ["lp", "ipp"]
    skip_note = "skipped (--skip-ipp)"
    raw = {}
    fail_count = [0]

    def failed(row, sys_, msg):
        fail_count[0] += 1
        if sys_ == "lp":
            row.lp_note = row.lp_note or msg
        else:
            row.note = row.note or f"failed: {msg}"

    try:
        # 0. raw ZeroMQ, direct and through a relay
        log("raw ZeroMQ baseline (direct and through a relay)")
        try:
            raw = run_kv([os.path.join(build, "zmq_baseline")] + (["--quick"] if quick else []),
                         os.environ, 300)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            log(f"zmq_baseline FAILED: {short(e)}")
            fail_count[0] += 1
        rawv = raw.get

        # 1. start-up and stop, fresh clusters, interleaved
        if want("startup"):
            r_start = add("startup", f"start-up to {n} engines registered, seen by client", "s", "lower")
            r_stop = add("stop", f"stop until all processes gone ({n} engines)", "s", "lower")
            for i in range(reps):
                for sys_ in systems:
                    log(f"start/stop {sys_} rep {i + 1}/{reps}")
                    c = Cluster(sys_, n, build)
                    clusters.append(c)
                    try:
                        v = c.start()
                        (r_start.lp if sys_ == "lp" else r_start.ipp).append(v["startup_s"])
                    except (RuntimeError, subprocess.TimeoutExpired, KeyError, OSError) as e:
                        log(f"{sys_} start-up FAILED: {short(e)}")
                        failed(r_start, sys_, short(e))
                    s = c.stop()
                    if s is not None:
                        (r_stop.lp if sys_ == "lp" else r_stop.ipp).append(s)
            judge(r_start, ">= 50 x ipp (issue 5)", [("ratio", r_start.ratio(), ">=", 50)])
            judge(r_stop, ">= 20 x ipp (issue 5)", [("ratio", r_stop.ratio(), ">=", 20)])

        # 2. the main clusters, side by side, workloads interleaved
        main_c = {}
        if run_groups & MAIN_GROUPS:
            log("main clusters")
            for sys_ in systems:
                main_c[sys_] = Cluster(sys_, n, build)
                clusters.append(main_c[sys_])
                try:
                    main_c[sys_].start()
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    log(f"{sys_} main cluster FAILED to start: {short(e)}")
                    fail_count[0] += 1
                    main_c[sys_].broken = short(e)
            time.sleep(1)           # let start-up transients settle before RSS
        fresh = {s: main_c[s].rss() for s in main_c}
        fresh_pss = {s: main_c[s].engine_pss() for s in main_c}

        def run_on(sys_, rowlist, workload, *args):
            """One workload on one system's main cluster; its key values, or
            None after marking every row in rowlist failed for that system."""
            c = main_c.get(sys_)
            if c is None or getattr(c, "broken", None):
                for row in rowlist:
                    failed(row, sys_, "cluster did not start")
                return None
            try:
                return c.run(workload, *args, timeout=wl_timeout)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                log(f"{sys_} {workload}: FAILED: {short(e)}")
                for row in rowlist:
                    failed(row, sys_, short(e))
                return None

        #  A third cluster, ours with --secure (CURVE on every channel), for
        #  the rows of rtt and lb measured with encryption (issue 12);
        #  started at its first use, stopped with the main clusters.
        secure_c = {}

        def run_secure(rowlist, workload, *args):
            c = secure_c.get("lp")
            if c is None:
                log("secure cluster (--secure: CURVE)")
                c = secure_c["lp"] = Cluster("lp", n, build, extra=["--secure"])
                clusters.append(c)
                try:
                    c.start()
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    log(f"lp --secure cluster FAILED to start: {short(e)}")
                    fail_count[0] += 1
                    c.broken = short(e)
            if getattr(c, "broken", None):
                for row in rowlist:
                    failed(row, "lp", "secure cluster did not start")
                return None
            try:
                return c.run(workload, *args, timeout=wl_timeout)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                log(f"lp --secure {workload}: FAILED: {short(e)}")
                for row in rowlist:
                    failed(row, "lp", short(e))
                return None

        def secure_rows(rowkeys, workload, *args):
            for i in range(reps):
                v = run_secure([r for r, _, _ in rowkeys], workload, *args)
                if v is None:
                    continue
                for row, key, scale in rowkeys:
                    if key in v:
                        row.lp.append(v[key] * scale)
                    else:
                        failed(row, "lp", f"no {key} in the output")

        def both_multi(rowkeys, workload, *args, ipp_args=None):
            for i in range(reps):
                for sys_ in systems:
                    a = ipp_args if (sys_ == "ipp" and ipp_args is not None) else args
                    v = run_on(sys_, [r for r, _, _ in rowkeys], workload, *a)
                    if v is None:
                        continue
                    for row, key, scale in rowkeys:
                        if key in v:
                            (row.lp if sys_ == "lp" else row.ipp).append(v[key] * scale)
                        else:
                            failed(row, sys_, f"no {key} in the output")

        if want("rtt"):
            log("no-op round trips")
            r_rtt = add("rtt_median", "no-op round trip, 1 engine (median)", "ms", "lower")
            r_p99 = add("rtt_p99", "no-op round trip, 1 engine (p99)", "ms", "lower")
            both_multi([(r_rtt, "rtt_median_us", 1e-3), (r_p99, "rtt_p99_us", 1e-3)], "rtt", rtt_calls)
            #  The limit of both rows: two raw round trips (medians), the
            #  hops of client -> controller -> engine and back. The raw p99
            #  (printed above the table) swings 30x with the machine's load,
            #  so the p99 target is on the same base as the median's.
            rtt2 = times(2e-3, rawv("rtt_median_us"))          # ms
            r_rtt.limit = r_p99.limit = rtt2
            for r in (r_rtt, r_p99):
                if rtt2 and r.med():
                    r.share = rtt2 / r.med()
            judge(r_rtt, f"<= 1.5 x 2 raw RTT ({fmt(times(1.5, rtt2))} ms)",
                  [("luaparallel", r_rtt.med(), "<=", times(1.5, rtt2))])
            judge(r_p99, f"<= 2 x 2 raw RTT ({fmt(times(2, rtt2))} ms)",
                  [("luaparallel", r_p99.med(), "<=", times(2, rtt2))])
            log("no-op round trips, --secure (CURVE)")
            r_rtt_c = add("rtt_median_curve", "no-op round trip, 1 engine, --secure: CURVE (median)",
                          "ms", "lower", note="ours only")
            secure_rows([(r_rtt_c, "rtt_median_us", 1e-3)], "rtt", rtt_calls)
            judge(r_rtt_c, f"<= 1.5 x without CURVE ({fmt(times(1.5, r_rtt.med()))} ms)",
                  [("luaparallel", r_rtt_c.med(), "<=", times(1.5, r_rtt.med()))])

        if want("all"):
            r_all = add("all_median", f"no-op apply on all {n} engines (median)", "ms", "lower")
            r_allp = add("all_p99", f"no-op apply on all {n} engines (p99)", "ms", "lower")
            both_multi([(r_all, "all_median_us", 1e-3), (r_allp, "all_p99_us", 1e-3)], "all", all_calls)

        if want("push"):
            log("push / pull")
            r_pb = add("push_bytes", f"push {big_mb} MB bytes to 1 engine", "MB/s", "higher")
            r_lb_ = add("pull_bytes", f"pull {big_mb} MB bytes from 1 engine", "MB/s", "higher")
            both_multi([(r_pb, "push_mb_s", 1), (r_lb_, "pull_mb_s", 1)], "push", big_mb, "bytes")
            r_pf = add("push_f64", f"push {big_mb} MB float64 array (typed / numpy)", "MB/s", "higher")
            r_lf = add("pull_f64", f"pull {big_mb} MB float64 array (typed / numpy)", "MB/s", "higher")
            both_multi([(r_pf, "push_mb_s", 1), (r_lf, "pull_mb_s", 1)], "push", big_mb, "f64")
            for r, rawkey, numpy_row in ((r_pb, "relay_push_mb_s", r_pf), (r_lb_, "relay_pull_mb_s", r_lf),
                                         (r_pf, "relay_push_mb_s", r_pf), (r_lf, "relay_pull_mb_s", r_lf)):
                r.limit = rawv(rawkey)
                if r.limit and r.med():
                    r.share = r.med() / r.limit
                ipp_np = numpy_row.med("ipp")
                judge(r, f">= 50% of raw via relay ({fmt(times(0.5, r.limit))}) and "
                         f">= 2 x ipp numpy ({fmt(times(2, ipp_np))})",
                      [("luaparallel", r.med(), ">=", times(0.5, r.limit)),
                       ("ipyparallel numpy", r.med(), ">=", times(2, ipp_np))])

        if want("scatter"):
            log("scatter / gather")
            r_sc = add("scatter", f"scatter 10^6 ints over {n} engines (array / list)", "s", "lower")
            r_ga = add("gather", f"gather 10^6 ints from {n} engines (array / list)", "s", "lower")
            both_multi([(r_sc, "scatter_s", 1), (r_ga, "gather_s", 1)], "scatter", scatter_n, "ints",
                       ipp_args=(scatter_n, "ints"))
            r_sct = add("scatter_typed", f"scatter 10^6 int64 over {n} engines (typed / numpy)", "s", "lower")
            r_gat = add("gather_typed", f"gather 10^6 int64 from {n} engines (typed / numpy)", "s", "lower")
            both_multi([(r_sct, "scatter_s", 1), (r_gat, "gather_s", 1)], "scatter", scatter_n, "i64",
                       ipp_args=(scatter_n, "numpy"))
            for r, rawkey in ((r_sc, "relay_scatter_s"), (r_ga, "relay_gather_s"),
                              (r_sct, "relay_scatter_s"), (r_gat, "relay_gather_s")):
                r.limit = rawv(rawkey)
                if r.limit and r.med():
                    r.share = r.limit / r.med()
            for r in (r_sc, r_ga):
                judge(r, f"<= 0.5 x ipp ({fmt(times(0.5, r.med('ipp')))} s)",
                      [("ipyparallel", r.med(), "<=", times(0.5, r.med("ipp")))])
            for r in (r_sct, r_gat):
                judge(r, f"<= 2 x raw 8 MB via relay ({fmt(times(2, r.limit))} s)",
                      [("luaparallel", r.med(), "<=", times(2, r.limit))])

        ctrl_after_xfer = None
        xfer_failed = ""                # the transfers behind it did not all run
        if "lp" in main_c and (want("push") or want("scatter")):
            time.sleep(0.5)
            ctrl_after_xfer = main_c["lp"].rss()[0]
            xfer_rows = [rowk(k) for k in ("push_bytes", "pull_bytes", "push_f64", "pull_f64",
                                           "scatter", "gather", "scatter_typed", "gather_typed")]
            missing = [r.key for r in xfer_rows if r is not None and not r.lp]
            if missing:
                xfer_failed = "transfers failed: " + ", ".join(missing)

        if want("lb"):
            log("load-balanced tasks (leastload)")
            r_lb = add("lb_leastload", f"load-balanced no-op tasks, leastload ({lb_lp:,} ours / {lb_ipp:,} ipp)",
                       "tasks/s", "higher")
            both_multi([(r_lb, "tasks_per_s", 1)], "lb", lb_lp, ipp_args=(lb_ipp,))
            log("load-balanced tasks (leastload), --secure (CURVE)")
            r_lb_c = add("lb_curve", f"load-balanced no-op tasks, leastload, --secure: CURVE "
                         f"({lb_lp:,})", "tasks/s", "higher", note="ours only")
            secure_rows([(r_lb_c, "tasks_per_s", 1)], "lb", lb_lp)
            judge(r_lb_c, f">= 0.5 x without CURVE ({fmt(times(0.5, r_lb.med()))}/s)",
                  [("luaparallel", r_lb_c.med(), ">=", times(0.5, r_lb.med()))])
            #  The task store's cost (issue 11): two fresh clusters, store on
            #  and off (--no-db), runs alternated, at least 3 each.
            log("load-balanced tasks, task store on and off")
            r_on = add("lb_store_on", f"load-balanced no-op tasks, task store on ({lb_lp:,}, "
                       "fresh cluster)", "tasks/s", "higher", note="ours only")
            r_off = add("lb_store_off", f"load-balanced no-op tasks, task store off (--no-db, "
                        f"{lb_lp:,}, fresh cluster)", "tasks/s", "higher", note="ours only")
            store_c = {}
            for row, extra in ((r_on, []), (r_off, ["--no-db"])):
                c = Cluster("lp", n, build, extra=extra)
                clusters.append(c)
                try:
                    c.start()
                    store_c[row.key] = c
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    log(f"lp {row.key}: cluster FAILED to start: {short(e)}")
                    failed(row, "lp", short(e))
            for i in range(max(reps, 3)):
                for row in (r_on, r_off):
                    c = store_c.get(row.key)
                    if c is None:
                        continue
                    try:
                        row.lp.append(c.run("lb", lb_lp, timeout=wl_timeout)["tasks_per_s"])
                    except (RuntimeError, subprocess.TimeoutExpired, KeyError, OSError) as e:
                        log(f"lp {row.key}: FAILED: {short(e)}")
                        failed(row, "lp", short(e))
            for c in store_c.values():
                c.stop()
            judge(r_on, "within 10 % of store off (issue 11)",
                  [("luaparallel", r_on.med(), ">=", times(0.9, r_off.med()))])
        if want("map"):
            r_map = add("lb_map", f"load-balanced map, chunksize 1 ({lb_lp:,} / {lb_ipp:,} items)",
                        "items/s", "higher")
            both_multi([(r_map, "items_per_s", 1)], "lbmap", lb_lp, 1, ipp_args=(lb_ipp, 1))

        if want("growth"):
            log(f"controller growth over {growth_tasks:,} tasks")
            r_grow = add("ctrl_growth", f"controller RSS growth over {growth_tasks:,} tasks "
                         f"after {growth_tasks:,} of warm-up",
                         "MB", "lower", note="ours only")
            #  Warm-up: the same count of tasks first (the rate runs before
            #  it are shorter in a quick run), so that caches bounded by
            #  count are full; what still grows after it is the figure.
            run_on("lp", [r_grow], "lb", growth_tasks)
            if "lp" in main_c and not r_grow.lp_note:
                before = main_c["lp"].rss()[0]
                v = run_on("lp", [r_grow], "lb", growth_tasks)
                if v is not None:
                    r_grow.lp.append(main_c["lp"].rss()[0] - before)
            elif "lp" not in main_c:
                r_grow.lp_note = "cluster did not start"
            judge(r_grow, "< 5 MB", [("luaparallel", r_grow.med(), "<", 5.0)])

        if want("lb") or want("map"):
            for r in (rowk("lb_leastload"), rowk("lb_map")):
                if r is None:
                    continue
                r.limit = rawv("relay_pipelined_per_s")
                if r.limit and r.med():
                    r.share = r.med() / r.limit
                judge(r, ">= 25,000/s and >= 60 x ipp",
                      [("luaparallel", r.med(), ">=", 25000), ("ratio", r.ratio(), ">=", 60)])

        if want("pi"):
            log("Monte Carlo pi")
            r_pi = add("pi", f"Monte Carlo pi 10^7 samples on {n} engines", "s", "lower")
            r_pis = add("pi_serial", "Monte Carlo pi 10^7 serial (Lua 5.4 / CPython)", "s", "lower")
            both_multi([(r_pi, "pi_s", 1), (r_pis, "pi_serial_s", 1)], "pi", pi_n)
            if r_pis.med() and r_pi.med():
                r_pi.limit = r_pis.med() / min(os.cpu_count() or 1, n)
                r_pi.share = r_pi.limit / r_pi.med()

        if want("memory") or ctrl_after_xfer is not None:
            log("memory")
            after = {s: main_c[s].rss() for s in main_c}
            lp_ok = "lp" in main_c and not getattr(main_c["lp"], "broken", None)
            ipp_ok = "ipp" in main_c and not getattr(main_c["ipp"], "broken", None)
            if ctrl_after_xfer is not None:
                r_x = add("ctrl_after_transfers", "controller RSS after the 100 MB transfers, minus fresh",
                          "MB", "lower", note="ours only")
                if xfer_failed:
                    r_x.lp_note = xfer_failed
                elif lp_ok:
                    r_x.lp.append(ctrl_after_xfer - fresh["lp"][0])
                judge(r_x, "<= 10 MB", [("luaparallel", r_x.med(), "<=", 10.0)])
            if want("memory"):
                r_eng = add("engine_rss", "idle engine RSS (ipp: engine + nanny)", "MB", "lower")
                r_pss = add("engine_pss", "idle engine PSS (shared pages split; ipp: engine + nanny)",
                            "MB", "lower")
                r_ctl = add("ctrl_rss", "controller RSS, fresh (ipp: hub + schedulers)", "MB", "lower")
                r_ctl2 = add("ctrl_rss_after", "controller RSS after the main workloads", "MB", "lower")
                if lp_ok:
                    r_eng.lp.append(fresh["lp"][1])
                    r_pss.lp.append(fresh_pss["lp"])
                    r_ctl.lp.append(fresh["lp"][0])
                    r_ctl2.lp.append(after["lp"][0])
                else:
                    for r in (r_eng, r_pss, r_ctl, r_ctl2):
                        r.lp_note = "cluster did not start"
                if ipp_ok:
                    r_eng.ipp.append(fresh["ipp"][1] + fresh["ipp"][2])
                    r_pss.ipp.append(fresh_pss["ipp"])
                    r_ctl.ipp.append(fresh["ipp"][0])
                    r_ctl2.ipp.append(after["ipp"][0])
                elif "ipp" not in systems:
                    for r in (r_eng, r_pss, r_ctl, r_ctl2):
                        r.note = skip_note
                judge(r_eng, "<= 4 MB", [("luaparallel", r_eng.med(), "<=", 4.0)])
                for r in (r_ctl, r_ctl2):
                    judge(r, "<= 5% of ipp (issue 5)", [("ratio", r.ratio(), ">=", 20)])

        if want("kill"):
            log("kill -9 of an engine")
            r_kill = add("kill", "kill -9 engine -> gone from client's ids", "ms", "lower")
            for sys_ in systems:
                v = run_on(sys_, [r_kill], "kill")
                if v is not None:
                    (r_kill.lp if sys_ == "lp" else r_kill.ipp).append(v["kill_detect_ms"])
        for sys_ in main_c:
            main_c[sys_].stop()
        for c in secure_c.values():
            c.stop()

        def over_budget(what):
            if budget_s and time.monotonic() - t_run > budget_s:
                log(f"{what}: skipped, the quick run is past {budget_s} s")
                return True
            return False

        # 3. the other schemes: a fresh cluster each
        for scheme in ["lru", "plainrandom", "weighted", "twobin"]:
            if not want("schemes"):
                break
            note = "" if not quick else "quick run: ipyparallel schemes only in the full bench"
            row = add(f"lb_{scheme}", f"load-balanced no-op tasks, {scheme} ({lb_lp:,} / {sch_ipp:,})",
                      "tasks/s", "higher", note=note)
            if over_budget(f"scheme {scheme}"):
                row.lp_note = "skipped: quick run over its time budget"
                continue
            log(f"scheme {scheme}")
            for sys_ in systems:
                if sys_ == "ipp" and quick:
                    continue
                c = Cluster(sys_, n, build, scheme=scheme)
                clusters.append(c)
                try:
                    c.start()
                    for i in range(reps):
                        v = c.run("lb", lb_lp if sys_ == "lp" else sch_ipp, timeout=wl_timeout)
                        (row.lp if sys_ == "lp" else row.ipp).append(v["tasks_per_s"])
                except (RuntimeError, subprocess.TimeoutExpired, KeyError, OSError) as e:
                    log(f"{sys_} {scheme}: {short(e)}")
                    failed(row, sys_, short(e))
                c.stop()
            row.limit = rawv("relay_pipelined_per_s")
            if row.limit and row.med():
                row.share = row.med() / row.limit

        # 4. registration of many engines
        reg_deadline = 15 if quick else 60
        for big in [64, 256, 1024]:
            if not want("reg"):
                break
            row = add(f"reg_{big}", f"start-up to {big} engines registered", "s", "lower")
            rstop = add(f"stop_{big}", f"stop {big} engines until all gone", "s", "lower")
            if over_budget(f"registration of {big}"):
                row.lp_note = "skipped: quick run over its time budget"
                if big == 1024:
                    judge(row, "<= 10 s (issue 5)", [("luaparallel", None, "<=", 10.0)])
                continue
            log(f"registration of {big} engines")
            c = Cluster("lp", big, build, timeout=reg_deadline)
            c.env["LP_BENCH_DEADLINE"] = str(reg_deadline)
            clusters.append(c)
            try:
                v = c.start(check=False)
            except (subprocess.TimeoutExpired, OSError) as e:
                v = {}
                log(f"lp {big} engines: {short(e)}")
            if "startup_s" in v:
                row.lp.append(v["startup_s"])
            else:
                row.lp_note = (f"ours: only {v.get('registered', 0):.0f} of {big} registered "
                               f"after {reg_deadline} s")
                log(row.lp_note)
            s = c.stop()
            if s is not None:
                rstop.lp.append(s)
            if big == 1024:
                judge(row, "<= 10 s (issue 5)", [("luaparallel", row.med(), "<=", 10.0)])
            if "ipp" not in systems:
                row.note = rstop.note = skip_note
            elif quick:
                row.note = rstop.note = "quick run: not run (ipyparallel takes ~94 s for 64)"
            elif big > 64:
                r64 = rowk("reg_64")
                if row_64_ipp_failed[0]:
                    row.note = rstop.note = "not run: 64 engines did not register within 2 min"
                else:
                    est = r64.ipp[0] * big / 64 if r64 and r64.ipp else None
                    row.note = rstop.note = (f"not run: registration is linear, 64 took "
                                             f"{fmt(r64.ipp[0])} s, so {big} would take "
                                             f"~{fmt(est)} s > 2 min" if est else "not run")
            else:
                c = Cluster("ipp", big, build, timeout=120)
                clusters.append(c)
                try:
                    v = c.start()
                    row.ipp.append(v["startup_s"])
                except (RuntimeError, subprocess.TimeoutExpired, KeyError, OSError) as e:
                    log(f"ipp {big} engines: {short(e)}")
                    row_64_ipp_failed[0] = True
                    row.note = rstop.note = "did not register within 2 min"
                s = c.stop()
                if s is not None and row.ipp:
                    rstop.ipp.append(s)

        # 5. 1024 engines on this host (issue 13): registration, %px fan-out,
        #    controller RSS per engine, false deaths while a map keeps every
        #    engine (and so both CPUs) busy, stop. The full bench loads for
        #    5 minutes, --quick for 30 s; the row's label says which.
        if want("many"):
            big = 1024
            load_s = 30 if quick else 300
            r_reg = add("many_reg", f"{big} engines: start-up until all registered", "s", "lower",
                        note="luaparallel only")
            r_fan = add("many_fanout", f"{big} engines: %px return lp.id, all replies in (median of 20)",
                        "ms", "lower", note="luaparallel only")
            r_rss = add("many_rss", f"{big} engines: controller RSS per engine (RSS / n, after the fan-outs)",
                        "KB", "lower", note="luaparallel only")
            r_dead = add("many_deaths", f"{big} engines: engines declared dead during a map keeping all "
                         f"{big} busy for {load_s} s" + (" (quick: the full bench loads 300 s)" if quick else ""),
                         "engines", "lower", note="luaparallel only")
            r_stop = add("many_stop", f"{big} engines: stop until all processes gone", "s", "lower",
                         note="luaparallel only")
            if over_budget("1024 engines"):
                for r in (r_reg, r_fan, r_rss, r_dead, r_stop):
                    r.lp_note = "skipped: quick run over its time budget"
            else:
                log(f"{big} engines (load {load_s} s)")
                c = Cluster("lp", big, build, timeout=120)
                c.env["LP_BENCH_DEADLINE"] = "120"
                clusters.append(c)
                try:
                    v = c.start(check=False)
                    if "startup_s" in v:
                        r_reg.lp.append(v["startup_s"])
                    else:
                        r_reg.lp_note = f"only {v.get('registered', 0):.0f} of {big} registered in 120 s"
                    v = c.run("fanout", big, 20, timeout=600)
                    r_fan.lp.append(v["fanout_median_ms"])
                    ctrl_mb = c.rss()[0]
                    r_rss.lp.append(ctrl_mb * 1024 / big)
                    v = c.run("load", big, load_s,
                              os.path.join(c.dir, "log", "lpcontroller.log"), timeout=load_s + 900)
                    r_dead.lp.append(v["false_deaths"])
                    if v.get("load_items_failed", 1) or v.get("engines_after", 0) != big:
                        r_dead.lp_note = (f"{v.get('load_items_failed')} map items failed, "
                                          f"{v.get('engines_after')} engines listed after")
                except (RuntimeError, subprocess.TimeoutExpired, KeyError, OSError) as e:
                    log(f"lp {big} engines: FAILED: {short(e)}")
                    for r in (r_reg, r_fan, r_rss, r_dead):
                        if not r.lp:
                            failed(r, "lp", short(e))
                s = c.stop()
                if s is not None:
                    r_stop.lp.append(s)
            judge(r_reg, "<= 10 s (issue 13)", [("registration", r_reg.med(), "<=", 10.0)])
            judge(r_fan, "< 100 ms (issue 13)", [("fan-out", r_fan.med(), "<", 100.0)])
            judge(r_rss, "<= 100 KB (issue 13)", [("RSS per engine", r_rss.med(), "<=", 100.0)])
            judge(r_dead, "0 (issue 13)" + ("" if not quick else "; 300 s in the full bench"),
                  [("false deaths", r_dead.med(), "<=", 0)])

        def us(k):
            return f"{raw[k]:,.0f}" if k in raw else "FAILED"
        raw_rows = [
            ("raw ZeroMQ DEALER<->ROUTER round trip (median / p99)",
             f"{us('rtt_median_us')} / {us('rtt_p99_us')} us"),
            ("raw round trip through a relay (client -> relay -> server and back; median / p99)",
             f"{us('relay_rtt_median_us')} / {us('relay_rtt_p99_us')} us"),
            ("raw pipelined echoes (1000 in flight), direct / through a relay",
             f"{us('pipelined_per_s')} / {us('relay_pipelined_per_s')} /s"),
            ("raw 100 MB direct: as one frame / in 1 MB messages / echoed as one frame",
             f"{us('big_one_frame_mb_s')} / {us('big_1mb_frames_mb_s')} / "
             f"{us('big_echo_one_frame_mb_s')} MB/s"),
            ("raw 100 MB through a relay as one message of 1 MB frames: push / pull",
             f"{us('relay_push_mb_s')} / {us('relay_pull_mb_s')} MB/s"),
            ("raw 8 MB through a relay as 4 messages of 2 MB: scatter / gather",
             (f"{raw['relay_scatter_s'] * 1000:.1f} / {raw['relay_gather_s'] * 1000:.1f} ms"
              if "relay_scatter_s" in raw and "relay_gather_s" in raw else "FAILED")),
        ]
    finally:
        for c in clusters:
            c.cleanup()
        for tag in _tags:
            kill_tag(tag)

    # ---- output
    elapsed = time.monotonic() - t_run
    kind = "partial (" + ",".join(g for g in GROUPS if g in run_groups) + ")" if opt.only else \
        ("quick" if quick else "full")
    header = [
        f"Run: {started.strftime('%Y-%m-%d %H:%M UTC')}, commit {commit_at_start} (at the start), "
        f"{kind} bench, {n} engines, "
        f"{reps} repetition(s) per figure (median [min..max]), {elapsed:.0f} s in all.",
        f"Machine: {machine()}.",
        "ipyparallel: " + subprocess.run([PY, "-c", "import ipyparallel; print(ipyparallel.__version__)"],
                                         capture_output=True, text=True).stdout.strip()
        + " (Debian), luaparallel: build " + (os.path.relpath(build, ROOT)
                                               if build.startswith(ROOT + "/") else build) + ".",
        "Ratio: how many times better luaparallel is (ipp/ours for times and sizes, "
        "ours/ipp for rates). Raw limit: the plain ZeroMQ figure of the same run "
        "(through a relay for transfers and rates, two direct round trips for the round trip). "
        "Status: computed from the figures of this run against issue 9's targets "
        "(FAILED: a figure it needs was not measured).",
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
    base = "partial" if opt.only else ("quick" if quick else "latest")
    write_csv(rows, os.path.join(outdir, f"{base}.csv"))
    png_ok = write_png(rows, os.path.join(outdir, f"{base}.png"))
    md = os.path.join(outdir, f"{base}.md")
    with open(md, "w") as f:
        f.write("\n".join(header + [""] + table_lines(rows, markdown=True)) + "\n")
    docs = (not quick and not opt.only) or opt.docs
    if docs:
        update_performance_md(docs_block(md))
    print()
    print(f"written: bench/results/{base}.csv, {base}.md" + (f", {base}.png" if png_ok else "")
          + (", docs/performance.md" if docs else ""))
    by = lambda st: [r.label for r in rows if r.status == st]
    print(f"targets: {len(by('PASS'))} PASS, {len(by('MISS'))} MISS, {len(by('FAILED'))} FAILED")
    for st in ("MISS", "FAILED"):
        if by(st):
            print(f"  {st}: " + "; ".join(by(st)))
    print(f"elapsed: {elapsed:.0f} s")
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if (fail_count[0] or by("FAILED")) else 0


row_64_ipp_failed = [False]

if __name__ == "__main__":
    sys.exit(main())
