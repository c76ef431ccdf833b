#!/usr/bin/env bash
#  cluster.sh - start, stop and inspect a luaparallel cluster; build and test
#
#  One entry point for users and CI. Every command builds what it needs
#  first (cmake's own incremental build: a no-op when up to date) after
#  checking that the Debian packages are there. Process control is by pid
#  only: the controller writes <profile>/pid/lpcontroller.pid and reaps its
#  own engines; engines started here with `engines` are recorded in pid
#  files under $LP_HOME/engines/ (LP_HOME default ~/.luaparallel).
#
#  Run `./cluster.sh --help` or `./cluster.sh <command> --help`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${LP_BUILD_DIR:-$ROOT/build}
PROG=${0##*/}
STOP_DEADLINE_MSEC=10000

#  ---------------------------------------------------------------------
#  Helpers

die () { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
say () { printf '%s: %s\n' "$PROG" "$*"; }

#  Milliseconds since the epoch into variable $1 (no fork: bash 5's
#  EPOCHREALTIME; date otherwise).
now_ms_to () {
    local _t=${EPOCHREALTIME:-}
    if [[ -n $_t ]]; then
        _t=${_t/[.,]/}
        printf -v "$1" '%s' $(( 10#$_t / 1000 ))
    else
        printf -v "$1" '%s' "$(date +%s%3N)"
    fi
}
now_ms () { local ms; now_ms_to ms; printf '%s\n' "$ms"; }

lp_root () {
    if [[ -n ${LP_HOME:-} ]]; then
        printf '%s\n' "$LP_HOME"
    else
        [[ -n ${HOME:-} ]] || die "neither LP_HOME nor HOME is set"
        printf '%s\n' "$HOME/.luaparallel"
    fi
}

profile_dir () { printf '%s/profile_%s\n' "$(lp_root)" "$1"; }

need_value () {   # option value: fail when the value is missing
    [[ $# -ge 2 && -n $2 ]] || die "option $1 needs a value (see $PROG ${CMD:-} --help)"
}

need_count () {   # option value: fail unless an integer >= 0
    need_value "$@"
    [[ $2 =~ ^[0-9]+$ ]] || die "option $1 wants a number >= 0, got '$2'"
}

need_int () {     # option value: fail unless a positive integer
    need_value "$@"
    [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "option $1 wants a positive integer, got '$2'"
}

#  True while pid runs. A zombie counts as gone: a daemon's parent may be
#  slow to reap it (PID 1 reaps orphans only every ~1.5 s on these VMs).
alive () {
    local pid=$1 stat state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    if [[ -r /proc/$pid/stat ]]; then
        { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || return 1
        state=${stat##*) }
        state=${state%% *}
        [[ $state != Z && $state != X ]]
    else
        kill -0 "$pid" 2>/dev/null
    fi
}

#  True when pid runs the program named $2 (guards against reused pids).
is_prog () {
    local pid=$1 name=$2 comm exe
    alive "$pid" || return 1
    if [[ -r /proc/$pid/comm ]]; then
        { read -r comm < "/proc/$pid/comm"; } 2>/dev/null || return 1
        [[ $comm == "$name" ]] && return 0
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        [[ ${exe##*/} == "$name" ]]
    else
        ps -o comm= -p "$pid" 2>/dev/null | grep -qx "$name"
    fi
}

read_pid () {     # file: prints the pid it holds, or nothing
    local pid=""
    if [[ -r $1 ]]; then read -r pid < "$1" 2>/dev/null || true; fi
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

#  Waits until pid is gone or deadline_ms has passed; 0 when gone.
#  Polls often at first (most stops take tens of ms), then every 100 ms.
wait_gone () {
    local pid=$1 now deadline nap=0.005
    now_ms_to now
    deadline=$(( now + $2 ))
    while alive "$pid"; do
        now_ms_to now
        (( now < deadline )) || return 1
        sleep "$nap"
        case $nap in
            0.005) nap=0.01 ;; 0.01) nap=0.02 ;; 0.02) nap=0.05 ;; *) nap=0.1 ;;
        esac
    done
    return 0
}

#  Stops pid (running program $2) with TERM, then KILL after the deadline.
#  Children named $3 that outlive a KILLed parent are stopped too, by pid.
#  Prints the elapsed milliseconds; returns 1 if KILL was needed.
stop_pid () {
    local pid=$1 name=$2 child_name=$3 t0 children c rc=0
    t0=$(now_ms)
    children=$(pgrep -P "$pid" -x "$child_name" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_DEADLINE_MSEC"; then
        printf '%s: %s (pid %s) did not stop within %d s; sending KILL\n' \
            "$PROG" "$name" "$pid" $(( STOP_DEADLINE_MSEC / 1000 )) >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5000 || die "$name (pid $pid) survives SIGKILL"
        rc=1
        for c in $children; do
            if is_prog "$c" "$child_name"; then
                kill -TERM "$c" 2>/dev/null || true
                wait_gone "$c" 3000 || kill -KILL "$c" 2>/dev/null || true
            fi
        done
    fi
    printf '%s\n' $(( $(now_ms) - t0 ))
    return $rc
}

#  ---------------------------------------------------------------------
#  Dependencies and build

DEPS_BUILD=(gcc make libc6-dev cmake pkg-config libzmq3-dev libczmq-dev
            libmsgpack-dev liblua5.4-dev libsodium-dev libjansson-dev
            libedit-dev libsqlite3-dev libmicrohttpd-dev iproute2 procps)
DEPS_TEST=(tmux lua5.4 python3-zmq python3-msgpack sqlite3 tcpdump faketime)
#  Launcher tests run against the real software (one array per launcher)
#  ssh: the real sshd of tests/shell/launcher_ssh.sh (the test runs its own,
#  in network namespaces; note that on a machine with systemd, installing
#  openssh-server also enables its ssh service)
DEPS_SSH=(openssh-server openssh-client)
DEPS_MPI=(openmpi-bin)                  # mpiexec (Open MPI 4.1) for launcher_mpi
DEPS_SLURM=(munge slurmctld slurmd slurm-client)
#  Grid Engine (launcher_sge); its postinst sets up Debian's own cell, which
#  the test leaves alone (it makes a cell of its own)
DEPS_SGE=(gridengine-master gridengine-exec gridengine-client)
#  The dashboard (libmicrohttpd) and its browser test (chromium)
DEPS_DASH=(chromium curl)
#  libFuzzer: Debian 12's clang 14 finds libclang_rt.fuzzer in libclang-rt-14-dev
DEPS_FUZZ=(clang libclang-rt-14-dev)
FUZZ_SECONDS=${LP_FUZZ_SECONDS:-60}

check_deps () {   # extra packages...
    [[ -n ${LP_SKIP_DEPS:-} ]] && return 0
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian system (no dpkg-query): not checking packages" >&2
        return 0
    fi
    local p missing=()
    for p in "${DEPS_BUILD[@]}" "$@"; do
        if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) != "install ok installed" ]]; then
            missing+=("$p")
        fi
    done
    (( ${#missing[@]} == 0 )) && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing missing packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
            apt-get update
            apt-get install -y --no-install-recommends "${missing[@]}" \
                || die "could not install: ${missing[*]}"
        fi
    else
        printf '%s: missing packages: %s\nInstall them with:\n  sudo apt-get install -y %s\n' \
            "$PROG" "${missing[*]}" "${missing[*]}" >&2
        exit 1
    fi
}

#  Builds targets (default: all) in build_dir; quiet unless it fails.
#  build_dir [cmake -D options...] -- [targets...]
build_in () {
    local dir=$1; shift
    local opts=() targets=() log
    while (( $# )) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    (( $# )) && shift
    targets=("$@")
    log=$(mktemp "${TMPDIR:-/tmp}/lp-build.XXXXXX")
    if [[ ! -f $dir/CMakeCache.txt ]] || (( ${#opts[@]} )) || [[ -n ${LP_WERROR:-} ]]; then
        if ! cmake -S "$ROOT" -B "$dir" -DLP_WERROR="${LP_WERROR:-OFF}" "${opts[@]}" >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"
            die "cmake configure failed in $dir"
        fi
    fi
    local targs=()
    (( ${#targets[@]} )) && targs=(--target "${targets[@]}")
    if ! cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" "${targs[@]}" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        die "build failed in $dir"
    fi
    rm -f "$log"
}

#  Builds build/ (RelWithDebInfo) unless --no-build was given.
ensure_built () {   # targets...
    [[ -n ${NO_BUILD:-} ]] && return 0
    check_deps
    if [[ ! -f $BUILD/CMakeCache.txt ]]; then
        build_in "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -- "$@"
    else
        build_in "$BUILD" -- "$@"
    fi
}

need_bin () {
    [[ -x $BUILD/$1 ]] || die "$BUILD/$1 is missing: run $PROG build"
}

#  ---------------------------------------------------------------------
#  Commands

usage_main () {
    cat <<EOF
usage: $PROG <command> [options]     ($PROG <command> --help for details)

Commands:
  start -n N [--profile P] [--ip IP] [--location HOST]
                       build, then start a controller with N local engines
  start --engines ssh --hosts h1:4,h2:8 [--ip IP]
                       ... or engines started by a launcher (ssh, mpi, slurm)
  stop [--profile P]   stop the controller of profile P (and its engines)
  rekey [--profile P]  new CURVE keys for a stopped controller (old files refused)
  status [--profile P] list the engines: id, host, pid, state, queue
  doctor [--profile P] every engine's host, pid, versions, memory, load, clock
                       offset and speed; exit 1 when something is flagged
  engines -n N --file lp-engine.json [--stop]
                       start (or stop) N engines for a controller, e.g. on
                       another host with a copy of lp-engine.json
  build                configure and build in build/ (RelWithDebInfo)
  test [--quick] [--no-sanitize] [--no-fuzz]
                       run the test suite, the fuzzers (60 s each), then
                       the suite again under ASan/UBSan; --quick: only the
                       unit and fast integration tests (under a minute)
  bench [--quick] [-n N]
                       luaparallel beside ipyparallel (bench/README.md)

Profiles live in \$LP_HOME/profile_<P> (LP_HOME default ~/.luaparallel,
P default "default"). LP_BUILD_DIR overrides the build folder (build/).
See README.md and docs/operations.md.
EOF
}

usage_start () {
    cat <<EOF
usage: $PROG start [-n N] [--engines N|KIND] [--launcher-opt KEY=VALUE]...
                   [--hosts LIST] [--mpi-args ARGS] [--slurm-partition P]
                   [--slurm-time T] [--slurm-account A] [--ready-timeout S]
                   [--profile P] [--ip IP] [--location HOST]
                   [--heartbeat MSEC] [--max-misses N]
                   [--scheduler NAME] [--hwm N] [--engine-memory MB]
                   [--restart-engines] [--replay-window MSEC]
                   [--no-db] [--db-max-result BYTES]
                   [--log-max MB] [--log-keep N] [--engine-wait S]
                   [--secure | --insecure] [--restore | --fresh]
                   [--dashboard [ADDR:]PORT] [--no-build]

Builds (unless --no-build), then runs
  build/lpcontroller --profile P --daemon -n N [...]
which returns once the N engines are registered (its output ends then:
out=\$($PROG start ...) returns). The controller writes
\$LP_HOME/profile_P/security/lp-client.json and lp-engine.json (mode 0600),
pid/lpcontroller.pid (mode 0600) and log/. Refuses when a controller of
that profile is already running, and fails at once, naming the path and
the reason, when the log folder cannot be written.

  -n N              engines to launch (default: number of CPUs for local
                    engines; 0 for a controller that waits for remote
                    engines)
  --engines N|KIND  a number: as -n; a kind: who starts the engines:
                    local (default), ssh, mpi, slurm, pbs, sge - the
                    launcher script src/launchers/lp-launch-KIND, which
                    the controller runs as its child ('start', and 'stop'
                    when the cluster stops; its output in log/launcher.log).
                    The start fails, quoting the launcher's last lines,
                    when it fails or its engines do not register within
                    --ready-timeout. See docs/operations.md, "Launchers".
  --launcher-opt KEY=VALUE
                    an option of the launcher (repeatable; the script sees
                    \$LP_OPT_KEY). Shorthands:
  --hosts LIST      hosts=LIST; ssh: [user@]host[%port][:count],... e.g.
                    alice@node1:4,node2%2222:8 (count default 1; without
                    -n the engine count is the sum). ssh options: engine=
                    PATH (lpengine on the hosts; default: this one's path),
                    ssh_config=FILE (ssh -F FILE), remote_dir=DIR (where
                    lp-engine.json is copied; default, under the remote
                    home: .luaparallel/remote/profile_P)
  --mpi-args ARGS   mpi_args=ARGS (extra mpiexec arguments)
  --slurm-partition P, --slurm-time T, --slurm-account A
                    partition=P, time=T, account=A (sbatch)
  --ready-timeout S the engines must register within S seconds (default
                    60; more for a batch queue), or the start fails
  --profile P       profile name (default "default")
  --ip IP           address to bind (default 127.0.0.1; 0.0.0.0 for all)
  --location HOST   address written into the connection files, the one
                    remote engines and clients will connect to
  --heartbeat MSEC  heartbeat period (default 1000)
  --max-misses N    missed heartbeats before an engine is dead (default 3)
  --scheduler NAME  load-balancing scheme: leastload (default), lru,
                    plainrandom, weighted, twobin
  --hwm N           most tasks outstanding on one engine (0 = no limit)
  --engine-memory MB
                    memory cap of each local engine's Lua state (default:
                    50 % of physical memory divided by N; 0 = no cap)
  --restart-engines restart a local engine that crashes, under its id (an
                    engine that ended itself because a request was stuck in
                    a C call past its time limit is always restarted)
  --replay-window MSEC
                    requests dated further than this from the controller's
                    clock are refused (default 60000)
  --no-db           no task store (\$LP_HOME/profile_P/db/tasks.sqlite3):
                    results cannot be fetched by msg_id from another client
  --db-max-result BYTES
                    largest reply the task store keeps (default 1048576);
                    larger ones are recorded as too large to keep
  --log-max MB      rotate log/lpcontroller.log and each log/engine-<k>.log
                    past MB megabytes (default 10; 0 = never): FILE ->
                    FILE.1 -> ... -> FILE.<N>; engine output (also what
                    an engine writes to its stderr) goes through the
                    controller, so an engine's logs never pass (N+1) x MB
  --log-keep N      rotated files kept per log (default 5)
  --engine-wait S   local engines exit by themselves S seconds after losing
                    their controller (default 60: long enough to start it
                    again; 0 = never)
  --secure          CURVE on every channel: encrypted, and only the holders
                    of lp-client.json / lp-engine.json get in (keys kept in
                    security/*.key*, mode 0600; default whenever --ip is not
                    a loopback address)
  --insecure        no CURVE even on a non-loopback --ip (a warning in the
                    log); for loopback-only testing
  --restore         take over from a controller of profile P that died
                    (killed, crashed): the same ports and key (read from
                    security/), its local engines that still run adopted
                    (not started twice; they re-register under their ids
                    with their Lua state), engines only started in the
                    slots whose engine is gone (-n: how many slots; default:
                    as many as the dead controller had; a launcher's
                    engines with its kind and options from
                    launcher/launcher.env), its unfinished
                    requests ended with ControllerRestarted in the task
                    store; clients that stayed up reconnect and get their
                    pending results (docs/operations.md, "Restarting a
                    controller")
  --dashboard [ADDR:]PORT
                    serve the web dashboard there (ADDR default 127.0.0.1;
                    PORT 0: a free one); its address is printed and kept in
                    security/dashboard.url; a --secure controller asks for
                    the token in security/dashboard.token
                    (docs/operations.md, "Dashboard")
  --fresh           when the profile's controller died: stop what it left
                    (its engines, by pid) and start a new cluster (new
                    ports and key). Without --restore or --fresh, start
                    on such a profile exits 1 and says so.
SIGHUP to the controller reopens its log files (for logrotate); SIGTERM
stops it. Local engines' pids are in \$LP_HOME/profile_P/pid/engine-<k>.pid.
Options not given come from \$LP_HOME/profile_P/lpcontroller_config.lua
when that file exists (template: profiles/default/), there also engines =
"ssh" and launcher = { hosts = "h1:4,h2:8", ... }.
EOF
}

usage_stop () {
    cat <<EOF
usage: $PROG stop [--profile P]

Sends SIGTERM to the controller of profile P (pid from
\$LP_HOME/profile_P/pid/lpcontroller.pid) and waits until it is gone; the
controller stops and reaps its own engines, and runs its launcher's
'stop' (--engines KIND). SIGKILL after ${STOP_DEADLINE_MSEC} ms (a minute more
with a launcher). When the
controller is gone (killed) but its launcher's record
launcher/launcher.env is left, 'lp-launch-KIND stop' is run from here.
Local engines still listed in pid/engine-<k>.pid afterwards (their
controller was killed, say) are stopped the same way, and stale pid files
removed. Engines started with '$PROG engines' on that profile's
lp-engine.json are stopped as well.
EOF
}

usage_status () {
    cat <<EOF
usage: $PROG status [--profile P] [--no-build]

Prints the controller's pid and a table of its engines (id, host, pid,
state, queue), through build/lpstatus. Exit 1 when no controller runs.
EOF
}

usage_doctor () {
    cat <<EOF
usage: $PROG doctor [--profile P] [--timeout MS] [--no-build]

Asks every engine of the controller of profile P, one at a time, for its
host, pid, user, working directory, Lua, luaparallel and protocol
versions, free memory and load average, measures its clock offset
against this host (an NTP-style round trip: run it on the controller's
host) and times a short calibration loop on it, through build/lpdoctor.
Flags version mismatches, a clock off by more than 1 s, an engine 3x
slower than the median, an engine that does not answer within --timeout
(default 10000 ms: a busy engine answers after its current task).
Exit 0 when nothing is flagged, 1 otherwise (or no controller runs).
EOF
}

usage_engines () {
    cat <<EOF
usage: $PROG engines -n N --file lp-engine.json [--engine-wait S] [--no-build]
       $PROG engines --stop --file lp-engine.json
       $PROG engines -n N --profile P          (uses P's own lp-engine.json)

Runs 'build/lpengine --file F -n N --daemon --pid-file PIDFILE --lost-exit
MSEC': N engines under one supervisor that connect to the controller named
in F (copy security/lp-engine.json from the controller's profile). The pid
file and a log go to \$LP_HOME/engines/. --stop stops every engine group
started here for that file.

  --engine-wait S   the engines exit by themselves after S seconds without
                    a controller (default 60: long enough to restart it;
                    0 = never, they keep trying to register again)
EOF
}

usage_test () {
    cat <<EOF
usage: $PROG test [--quick] [--no-sanitize] [--no-fuzz]

--quick: builds build/ and runs only the unit tests and the fast
integration tests there (ctest -LE 'long|slow': no test labelled long or
slow, no fuzzing, no sanitizer pass); under a minute on 2 cores. For a
check while editing; CI runs the full command.

Without --quick: builds build/ and runs ctest there; then (unless
--no-fuzz) builds the libFuzzer targets with clang in build-fuzz/
(-DLP_FUZZ=ON) and runs fuzz_wire and fuzz_codec side by side for
${FUZZ_SECONDS} s each (LP_FUZZ_SECONDS), starting from tests/fuzz/corpus/; a crash, leak or
sanitizer report fails the pass and leaves the input in
build-fuzz/crash-*. Then (unless --no-sanitize) configures build-asan/
with -DLP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug and runs ctest again under
AddressSanitizer (leak checks on) and UndefinedBehaviorSanitizer, all
but the tests labelled "slow" (the 1 GB values), "launcher" (sshd, Open
MPI, Slurm and Grid Engine daemons) and "browser" (Chromium): the release pass runs them.
Exit status is non-zero when any pass fails.

Test labels (tests/CMakeLists.txt): unit (no cluster), integration (real
processes), long (an integration test over ~6 s), slow (1 GB values),
launcher (real sshd / Open MPI / Slurm / Grid Engine), browser (headless Chromium).
A test that cannot run on this machine exits 77 and ctest reports it as
skipped, with its reason in the output. One label or test by hand:
  ctest --test-dir build -L unit        ctest --test-dir build -R chaos
EOF
}

usage_build () {
    cat <<EOF
usage: $PROG build

Checks the Debian packages, then configures (if needed) and builds build/
(CMAKE_BUILD_TYPE=RelWithDebInfo). Output is shown only when it fails.
EOF
}

usage_bench () {
    cat <<EOF
usage: $PROG bench [--quick] [-n N] [--only GROUP,...] [--docs]

The benchmark suite (bench/): luaparallel beside ipyparallel, in one run on
this machine, reported as ratios (bench/README.md explains each workload).
Installs python3-ipyparallel, python3-numpy and gnuplot-nox when missing
(as root; else it prints the apt-get line), builds build/ (\$LP_BUILD_DIR:
lpcontroller, lpengine, bench/lp_bench, bench/zmq_baseline), then runs
bench/bench.py with Debian's /usr/bin/python3: the raw ZeroMQ limits
(direct and through a relay), then every workload for both systems one
after the other with the same number of engines. Prints the table with
issue 9's targets and a computed PASS / MISS / FAILED per row; writes
bench/results/latest.{csv,md,png} and the table in docs/performance.md
(full run) or bench/results/quick.{csv,md,png}. Exits 1 when a
measurement failed. Not part of '$PROG test'. Every process it starts is
stopped by pid.

  --quick   1 repetition, smaller counts, no ipyparallel scheme variants
            or 64-engine registration for ipyparallel (under 5 minutes)
  -n N      engines per cluster (default 4)
  --only G  only these workload groups (comma-separated: startup, rtt, all,
            push, scatter, lb, map, growth, pi, memory, kill, schemes, reg,
            many: 1024 engines, issue 13);
            writes bench/results/partial.*
  --docs    also write the table into docs/performance.md after --quick
EOF
}

#  Controller pid of profile dir, or nothing when none runs.
controller_pid () {
    local pid
    pid=$(read_pid "$1/pid/lpcontroller.pid")
    [[ -n $pid ]] && is_prog "$pid" lpcontroller && printf '%s\n' "$pid"
    return 0
}

#  A profile whose controller died (its pid file names a process that is
#  gone, its connection files are still there): start says so and stops,
#  unless --restore (take over) or --fresh (clean up, then start anew).
check_dead_controller () {   # profile dir, name, restore, fresh
    local dir=$1 profile=$2 restore=$3 fresh=$4 pid
    pid=$(read_pid "$dir/pid/lpcontroller.pid")
    if [[ -z $pid || ! -f $dir/security/lp-client.json ]]; then
        [[ -z $restore ]] || die "start --restore: no controller of profile '$profile' to take over from ($dir has no pid file or connection files); start without --restore"
        return 0
    fi
    [[ -n $restore ]] && return 0
    if [[ -n $fresh ]]; then
        say "the controller of profile '$profile' (pid $pid) died; --fresh: stopping what it left and starting anew"
        rm -f "$dir/pid/lpcontroller.pid" "$dir/security/lp-client.json" "$dir/security/lp-engine.json"
        stop_local_engines "$dir"
        stop_launcher "$dir" || true
        return 0
    fi
    die "the controller of profile '$profile' (pid $pid) died without stopping ($dir): its engines may still run, with their state, and its unfinished requests are in the task store.
  take over from it:   $PROG start --restore --profile $profile
  or discard it:       $PROG start --fresh --profile $profile  (or $PROG stop --profile $profile first)"
}

cmd_start () {
    local n="" profile=default ip="" location="" hb="" misses="" sched="" hwm=""
    local memory="" restart="" window="" nodb="" dbmax=""
    local log_max="" log_keep="" engine_wait="" restore="" fresh=""
    local secure="" dashboard="" kind="" lopts=() ready=""
    while (( $# )); do
        case $1 in
            -h|--help) usage_start; exit 0 ;;
            --engines)
                need_value "$@"
                if [[ $2 =~ ^[0-9]+$ ]]; then n=$2; else kind=$2; fi
                shift 2 ;;
            --ready-timeout) need_int "$@"; ready=$2; shift 2 ;;
            --launcher-opt|--hosts|--mpi-args|--slurm-partition|--slurm-time|--slurm-account)
                need_value "$@"; lopts+=("$1" "$2"); shift 2 ;;
            --restore) restore=1; shift ;;
            --fresh) fresh=1; shift ;;
            -n) need_count "$@"; n=$2; shift 2 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            --ip) need_value "$@"; ip=$2; shift 2 ;;
            --location) need_value "$@"; location=$2; shift 2 ;;
            --heartbeat) need_int "$@"; hb=$2; shift 2 ;;
            --max-misses) need_int "$@"; misses=$2; shift 2 ;;
            --scheduler) need_value "$@"; sched=$2; shift 2 ;;
            --hwm) need_count "$@"; hwm=$2; shift 2 ;;
            --engine-memory) need_count "$@"; memory=$2; shift 2 ;;
            --restart-engines) restart=1; shift ;;
            --replay-window) need_int "$@"; window=$2; shift 2 ;;
            --no-db) nodb=1; shift ;;
            --db-max-result) need_count "$@"; dbmax=$2; shift 2 ;;
            --log-max) need_count "$@"; log_max=$2; shift 2 ;;
            --log-keep) need_count "$@"; log_keep=$2; shift 2 ;;
            --engine-wait) need_count "$@"; engine_wait=$2; shift 2 ;;
            --secure|--insecure) secure=$1; shift ;;
            --dashboard) need_value "$@"; dashboard=$2; shift 2 ;;
            --no-build) NO_BUILD=1; shift ;;
            *) die "start: unknown option '$1' (see $PROG start --help)" ;;
        esac
    done
    [[ -n $restore && -n $fresh ]] && die "start: --restore and --fresh exclude each other"
    #  --restore without -n: as many engine slots as the dead controller had
    #  Without -n the controller takes the config file's count, a
    #  launcher's hosts, else this default
    local auto
    auto=$(nproc 2>/dev/null || echo 2)
    local dir pid
    dir=$(profile_dir "$profile")
    pid=$(controller_pid "$dir")
    if [[ -n $pid ]]; then
        die "a controller for profile '$profile' is already running (pid $pid, $dir); stop it first: $PROG stop --profile $profile"
    fi
    check_dead_controller "$dir" "$profile" "$restore" "$fresh"
    #  --restore of a launcher's cluster: its kind, count and options from
    #  the dead controller's record (the command line's still win), so
    #  the new controller's stop ends those engines the same way
    if [[ -n $restore && -f $dir/launcher/launcher.env ]]; then
        local line key recorded=()
        while IFS= read -r line; do
            case $line in
                LP_LAUNCHER_KIND=*) [[ -n $kind ]] || kind=${line#*=} ;;
                LP_N=*) [[ -n $n ]] || n=${line#*=} ;;
                LP_OPT_*=*)
                    key=${line%%=*}; key=${key#LP_OPT_}
                    recorded+=(--launcher-opt "${key,,}=${line#*=}") ;;
            esac
        done < "$dir/launcher/launcher.env"
        lopts=("${recorded[@]}" "${lopts[@]}")
        say "--restore: the engines of launcher $kind ($n), as recorded in $dir/launcher/launcher.env"
    fi
    ensure_built
    need_bin lpcontroller
    [[ $n == 0 ]] || need_bin lpengine
    #  The controller makes the profile folder; make its parent first.
    ( umask 077; mkdir -p "$(lp_root)" ) || die "cannot create $(lp_root)"
    local args=(--profile "$profile" --daemon)
    [[ -n $n ]] && args+=(-n "$n")
    [[ -n $n || -n $restore ]] || args+=(--engines-default "$auto")
    [[ -n $kind ]] && args+=(--engines "$kind")
    [[ -n $ready ]] && args+=(--ready-timeout "$ready")
    (( ${#lopts[@]} )) && args+=("${lopts[@]}")
    [[ -n $restore ]] && args+=(--restore)
    [[ -n $ip ]] && args+=(--ip "$ip")
    [[ -n $location ]] && args+=(--location "$location")
    [[ -n $hb ]] && args+=(--heartbeat "$hb")
    [[ -n $misses ]] && args+=(--max-misses "$misses")
    [[ -n $sched ]] && args+=(--scheduler "$sched")
    [[ -n $hwm ]] && args+=(--hwm "$hwm")
    [[ -n $memory ]] && args+=(--engine-memory "$memory")
    [[ -n $restart ]] && args+=(--restart-engines)
    [[ -n $window ]] && args+=(--replay-window "$window")
    [[ -n $nodb ]] && args+=(--no-db)
    [[ -n $dbmax ]] && args+=(--db-max-result "$dbmax")
    [[ -n $log_max ]] && args+=(--log-max "$log_max")
    [[ -n $log_keep ]] && args+=(--log-keep "$log_keep")
    [[ -n $engine_wait ]] && args+=(--engine-wait "$engine_wait")
    [[ -n $secure ]] && args+=("$secure")
    [[ -n $dashboard ]] && args+=(--dashboard "$dashboard")
    "$BUILD/lpcontroller" "${args[@]}" || return
    #  The dashboard's address (also when lpcontroller_config.lua asked for it)
    if [[ -f $dir/security/dashboard.url ]]; then
        echo "dashboard: $(cat "$dir/security/dashboard.url")"
    fi
    return 0
}

usage_rekey () {
    cat <<EOF
usage: $PROG rekey [--profile P]

Removes the CURVE key pairs of profile P (security/controller.key*,
client.key*, engine.key*) so that the next secure start makes new ones and
writes them into new connection files. The controller must be stopped
first ($PROG stop): keys are read at start. Copies of the old
lp-client.json / lp-engine.json (on other hosts, say) are refused from
then on; copy the new files where they are needed.
EOF
}

cmd_rekey () {
    local profile=default
    while (( $# )); do
        case $1 in
            -h|--help) usage_rekey; exit 0 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            *) die "rekey: unknown option '$1' (see $PROG rekey --help)" ;;
        esac
    done
    local dir pid role
    dir=$(profile_dir "$profile")
    pid=$(controller_pid "$dir")
    [[ -z $pid ]] || die "the controller of profile '$profile' is running (pid $pid): stop it first ($PROG stop --profile $profile), then rekey and start again"
    for role in controller client engine; do
        rm -f "$dir/security/$role.key" "$dir/security/$role.key_secret"
    done
    say "removed the CURVE keys of $dir/security: the next secure start makes new ones"
}

#  Engine groups recorded for a connection file: their pid files.
engine_records () {   # absolute connection file path
    local dir f
    dir="$(lp_root)/engines"
    [[ -d $dir ]] || return 0
    for f in "$dir"/engines-*.file; do
        [[ -f $f ]] || continue
        if [[ $(cat "$f") == "$1" ]]; then
            printf '%s\n' "${f%.file}.pid"
        fi
    done
}

#  Stops the engine groups recorded for files matching a glob pattern.
stop_engine_records () {   # pattern ("<abs path>" or "<dir>/*")
    local dir f target pidfile pid ms n=0
    dir="$(lp_root)/engines"
    [[ -d $dir ]] || { printf '0\n'; return 0; }
    for f in "$dir"/engines-*.file; do
        [[ -f $f ]] || continue
        target=$(cat "$f")
        # shellcheck disable=SC2053  # $1 is a glob pattern on purpose
        [[ $target == $1 ]] || continue
        pidfile=${f%.file}.pid
        pid=$(read_pid "$pidfile")
        if [[ -n $pid ]] && is_prog "$pid" lpengine; then
            ms=$(stop_pid "$pid" "lpengine" lpengine) || true
            say "engines (pid $pid, $target) stopped in ${ms} ms" >&2
            n=$(( n + 1 ))
        fi
        rm -f "$pidfile" "$f"
    done
    printf '%s\n' "$n"
}

#  True when pid is an lpengine serving the profile in dir (its command
#  line names dir's lp-engine.json): never signal a reused pid.
is_engine_of () {
    local pid=$1 dir=$2 cmdline
    is_prog "$pid" lpengine || return 1
    [[ -r /proc/$pid/cmdline ]] || return 0
    cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
    [[ $cmdline == *"$dir/security/lp-engine.json"* ]]
}

#  Stops the local engines listed in dir/pid/engine-*.pid (left behind by
#  a controller that was killed) and removes those files. Prints a line
#  per group when something was stopped.
stop_local_engines () {   # profile dir
    local dir=$1 f pid n=0 t0 pids=()
    t0=$(now_ms)
    for f in "$dir"/pid/engine-*.pid; do
        [[ -f $f ]] || continue
        pid=$(read_pid "$f")
        if [[ -n $pid ]] && is_engine_of "$pid" "$dir"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$f"
    done
    for pid in "${pids[@]}"; do
        if ! wait_gone "$pid" "$STOP_DEADLINE_MSEC"; then
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5000 || say "engine pid $pid survives SIGKILL" >&2
        fi
        n=$(( n + 1 ))
    done
    (( n == 0 )) || say "$n local engine(s) left by the controller stopped in $(( $(now_ms) - t0 )) ms"
    return 0
}

#  Runs `lp-launch-KIND stop` from the record a controller left in
#  dir/launcher/launcher.env (it was killed before it could run it).
stop_launcher () {   # profile dir
    local dir=$1 env_file=$1/launcher/launcher.env line vars=() script="" kind="" rc=0 t0
    [[ -f $env_file ]] || return 0
    while IFS= read -r line; do
        [[ $line == LP_*=* ]] || continue
        vars+=("$line")
        case $line in
            LP_LAUNCHER_SCRIPT=*) script=${line#*=} ;;
            LP_LAUNCHER_KIND=*) kind=${line#*=} ;;
        esac
    done < "$env_file"
    if [[ -z $script || ! -x $script ]]; then
        say "launcher record $env_file names no script that can run ('$script'): its engines may still run" >&2
        return 1
    fi
    t0=$(now_ms)
    mkdir -p "$dir/log"
    printf -- '---- %s: %s stop (cluster.sh: the controller is gone)\n' \
        "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$script" >> "$dir/log/launcher.log"
    env "${vars[@]}" "$script" stop >> "$dir/log/launcher.log" 2>&1 </dev/null || rc=$?
    if (( rc == 0 )); then
        rm -f "$env_file"
        say "launcher $kind: its engines stopped in $(( $(now_ms) - t0 )) ms"
    else
        say "launcher $kind: stop failed (exit status $rc): $(tail -n 3 "$dir/log/launcher.log" | tr '\n' ' ')" >&2
        return 1
    fi
}

cmd_stop () {
    local profile=default
    while (( $# )); do
        case $1 in
            -h|--help) usage_stop; exit 0 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            *) die "stop: unknown option '$1' (see $PROG stop --help)" ;;
        esac
    done
    local dir pidfile pid ms
    dir=$(profile_dir "$profile")
    pidfile=$dir/pid/lpcontroller.pid
    stop_engine_records "$dir/*" >/dev/null
    pid=$(read_pid "$pidfile")
    if [[ -z $pid ]]; then
        say "no controller running for profile '$profile'"
        stop_local_engines "$dir"
        stop_launcher "$dir"
        return
    fi
    if ! is_prog "$pid" lpcontroller; then
        say "no controller running for profile '$profile' (stale pid file $pidfile removed)"
        rm -f "$pidfile" "$dir/security/lp-client.json" "$dir/security/lp-engine.json"
        stop_local_engines "$dir"
        stop_launcher "$dir"
        return
    fi
    #  A launcher's stop (ssh to each host, scancel) may take the
    #  controller up to a minute (LP_LAUNCHER_STOP_MSEC) before it exits
    [[ -f $dir/launcher/launcher.env ]] && STOP_DEADLINE_MSEC=$(( STOP_DEADLINE_MSEC + 60000 ))
    if ms=$(stop_pid "$pid" lpcontroller lpengine); then
        say "controller (pid $pid, profile '$profile') stopped in ${ms} ms"
    else
        rm -f "$pidfile" "$dir/security/lp-client.json" "$dir/security/lp-engine.json"
        say "controller (pid $pid, profile '$profile') killed after ${ms} ms"
    fi
    stop_local_engines "$dir"
    stop_launcher "$dir"
}

#  Runs a client tool of build/ (lpstatus, lpdoctor) with the client
#  connection file of profile's running controller; 1 when none runs.
run_on_controller () {   # profile tool [tool options...]
    local profile=$1 tool=$2 dir pid
    shift 2
    dir=$(profile_dir "$profile")
    pid=$(controller_pid "$dir")
    if [[ -z $pid ]]; then
        say "no controller running for profile '$profile' ($dir)"
        return 1
    fi
    [[ -x $BUILD/$tool ]] || ensure_built "$tool"
    need_bin "$tool"
    printf 'controller: pid %s, profile %s\n' "$pid" "$dir"
    "$BUILD/$tool" --file "$dir/security/lp-client.json" "$@"
}

cmd_status () {
    local profile=default
    while (( $# )); do
        case $1 in
            -h|--help) usage_status; exit 0 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            --no-build) NO_BUILD=1; shift ;;
            *) die "status: unknown option '$1' (see $PROG status --help)" ;;
        esac
    done
    run_on_controller "$profile" lpstatus
}

cmd_doctor () {
    local profile=default timeout=""
    while (( $# )); do
        case $1 in
            -h|--help) usage_doctor; exit 0 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            --timeout) need_value "$@"; timeout=$2; shift 2 ;;
            --no-build) NO_BUILD=1; shift ;;
            *) die "doctor: unknown option '$1' (see $PROG doctor --help)" ;;
        esac
    done
    run_on_controller "$profile" lpdoctor ${timeout:+--timeout "$timeout"}
}

cmd_engines () {
    local n="" file="" profile="" stop="" engine_wait=60
    while (( $# )); do
        case $1 in
            -h|--help) usage_engines; exit 0 ;;
            -n) need_int "$@"; n=$2; shift 2 ;;
            --file) need_value "$@"; file=$2; shift 2 ;;
            --profile) need_value "$@"; profile=$2; shift 2 ;;
            --stop) stop=1; shift ;;
            --engine-wait) need_count "$@"; engine_wait=$2; shift 2 ;;
            --no-build) NO_BUILD=1; shift ;;
            *) die "engines: unknown option '$1' (see $PROG engines --help)" ;;
        esac
    done
    if [[ -z $file ]]; then
        [[ -n $profile ]] || die "engines: give --file lp-engine.json (or --profile P)"
        file="$(profile_dir "$profile")/security/lp-engine.json"
    fi
    local abs
    abs=$(realpath -m -- "$file")
    if [[ -n $stop ]]; then
        local count
        count=$(stop_engine_records "$abs")
        [[ $count != 0 ]] || say "no engines recorded for $abs"
        return 0
    fi
    [[ -n $n ]] || die "engines: give -n N"
    [[ -r $abs ]] || die "engines: cannot read connection file $abs"
    ensure_built lpengine
    need_bin lpengine
    local dir key k=1 base
    dir="$(lp_root)/engines"
    mkdir -p "$dir"
    chmod 700 "$dir" 2>/dev/null || true
    key=$(printf '%s' "$abs" | cksum | cut -d' ' -f1)
    while [[ -e $dir/engines-$key-$k.file ]]; do
        local old
        old=$(read_pid "$dir/engines-$key-$k.pid")
        if [[ -z $old ]] || ! is_prog "$old" lpengine; then
            rm -f "$dir/engines-$key-$k.file" "$dir/engines-$key-$k.pid"
            break
        fi
        k=$(( k + 1 ))
    done
    base=$dir/engines-$key-$k
    printf '%s\n' "$abs" > "$base.file"
    rm -f "$base.pid"
    if ! "$BUILD/lpengine" --file "$abs" -n "$n" --daemon --pid-file "$base.pid" \
            --log "$base.log" --lost-exit $(( engine_wait * 1000 )); then
        rm -f "$base.file" "$base.pid"
        die "lpengine failed (log: $base.log)"
    fi
    local deadline pid
    deadline=$(( $(now_ms) + 5000 ))
    while :; do
        pid=$(read_pid "$base.pid")
        [[ -n $pid ]] && break
        (( $(now_ms) < deadline )) || { rm -f "$base.file"; die "lpengine wrote no pid file $base.pid (log: $base.log)"; }
        sleep 0.02
    done
    say "started $n engine(s) for $abs (supervisor pid $pid)"
    say "pid file: $base.pid   log: $base.log"
    say "stop them with: $PROG engines --stop --file $abs"
}

#  Runs ctest in dir; prints a one-line summary; returns its status.
ctest_pass () {   # label dir [ctest options...]
    local label=$1 dir=$2 t0 rc=0 out line verdict=""
    shift 2
    t0=$(now_ms)
    out=$(mktemp "${TMPDIR:-/tmp}/lp-ctest.XXXXXX")
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300 "$@" 2>&1 | tee "$out" || rc=$?
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$out" | tail -n 1 || true)
    [[ -n $line ]] || line="no test summary (ctest status $rc)"
    grep -q 'No tests were found' "$out" && line="no tests found" && rc=1
    rm -f "$out"
    (( rc == 0 )) || verdict=" FAILED"
    printf '%s: %s pass: %s (%d s)%s\n' "$PROG" "$label" "$line" \
        $(( ($(now_ms) - t0) / 1000 )) "$verdict"
    return $rc
}

#  Builds the libFuzzer targets in build-fuzz/ and runs them side by side
#  for FUZZ_SECONDS each; the committed corpus is read, never written (new
#  inputs go to a temporary folder). Returns 1 on a crash or build failure.
fuzz_pass () {
    local dir=${LP_FUZZ_BUILD_DIR:-$ROOT/build-fuzz} t0 t rc=0 work pid
    local -a names=() pids=()
    t0=$(now_ms)
    if ! ( build_in "$dir" -DCMAKE_C_COMPILER=clang -DLP_FUZZ=ON \
                -DCMAKE_BUILD_TYPE=RelWithDebInfo -- fuzz_wire fuzz_codec ); then
        say "fuzz (build-fuzz/) pass: build FAILED"
        return 1
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/lp-fuzz.XXXXXX")
    for t in wire codec; do
        mkdir -p "$work/$t"
        "$dir/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
            -dict="$ROOT/tests/fuzz/$t.dict" -artifact_prefix="$dir/crash-$t-" \
            "$work/$t" "$ROOT/tests/fuzz/corpus/$t" >"$dir/fuzz_$t.log" 2>&1 &
        names+=("$t")
        pids+=("$!")
    done
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        t=${names[$i]}
        if wait "$pid"; then
            say "fuzz_$t: $(grep -E '^Done [0-9]+ runs' "$dir/fuzz_$t.log" | tail -n 1)"
        else
            rc=1
            say "fuzz_$t FAILED (log $dir/fuzz_$t.log):"
            grep -E -A 25 'ERROR: |runtime error|Assertion|deadly signal' "$dir/fuzz_$t.log" \
                | head -n 60 >&2 || tail -n 40 "$dir/fuzz_$t.log" >&2
        fi
    done
    rm -rf "$work"
    printf '%s: fuzz (build-fuzz/) pass: %s (%d s)\n' "$PROG" \
        "$( (( rc == 0 )) && echo "no crash in ${FUZZ_SECONDS} s per target" || echo FAILED)" \
        $(( ($(now_ms) - t0) / 1000 ))
    return $rc
}

cmd_test () {
    local sanitize=1 fuzz=1 failed=0 quick=""
    while (( $# )); do
        case $1 in
            -h|--help) usage_test; exit 0 ;;
            --quick) quick=1; sanitize=""; fuzz=""; shift ;;
            --no-sanitize) sanitize=""; shift ;;
            --no-fuzz) fuzz=""; shift ;;
            *) die "test: unknown option '$1' (see $PROG test --help)" ;;
        esac
    done
    if [[ -n $fuzz ]]; then
        check_deps "${DEPS_TEST[@]}" "${DEPS_SSH[@]}" "${DEPS_MPI[@]}" "${DEPS_SLURM[@]}" "${DEPS_SGE[@]}" "${DEPS_DASH[@]}" "${DEPS_FUZZ[@]}"
    else
        check_deps "${DEPS_TEST[@]}" "${DEPS_SSH[@]}" "${DEPS_MPI[@]}" "${DEPS_SLURM[@]}" "${DEPS_SGE[@]}" "${DEPS_DASH[@]}"
    fi
    NO_BUILD="" LP_SKIP_DEPS=1 ensure_built
    if [[ -n $quick ]]; then
        ctest_pass "quick (build/, unit and fast integration)" "$BUILD" -LE 'long|slow' || failed=1
    else
        ctest_pass "release (build/)" "$BUILD" || failed=1
    fi
    if [[ -n $fuzz ]]; then
        fuzz_pass || failed=1
    fi
    if [[ -n $sanitize ]]; then
        local asan=$ROOT/build-asan
        if ( build_in "$asan" -DLP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -- ); then
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                ctest_pass "sanitize (build-asan/)" "$asan" -LE 'slow|launcher|browser' || failed=1
        else
            say "sanitize (build-asan/) pass: build FAILED"
            failed=1
        fi
    fi
    (( failed == 0 )) || die "tests failed"
    say "all test passes OK"
}

cmd_build () {
    case ${1:-} in
        -h|--help) usage_build; exit 0 ;;
        "") ;;
        *) die "build: unknown option '$1'" ;;
    esac
    local t0; t0=$(now_ms)
    ensure_built
    say "built in $BUILD ($(( $(now_ms) - t0 )) ms)"
}

cmd_bench () {
    local args=()
    while (( $# )); do
        case $1 in
            -h|--help) usage_bench; exit 0 ;;
            --quick) args+=(--quick); shift ;;
            -n) need_int "$@"; args+=(-n "$2"); shift 2 ;;
            --only) [[ -n ${2:-} ]] || die "bench: --only needs a list of groups"
                    args+=(--only "$2"); shift 2 ;;
            --docs) args+=(--docs); shift ;;
            *) die "bench: unknown option '$1' (see $PROG bench --help)" ;;
        esac
    done
    #  python3-numpy: ipyparallel's side pushes numpy arrays (not a
    #  dependency of python3-ipyparallel, and we install without recommends)
    check_deps python3-ipyparallel python3-numpy gnuplot-nox
    NO_BUILD="" LP_SKIP_DEPS=1 ensure_built lpcontroller lpengine luaparallel lp_bench zmq_baseline
    [[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is missing (apt-get install python3)"
    /usr/bin/python3 "$ROOT/bench/bench.py" --build "$BUILD" "${args[@]}"
}

#  ---------------------------------------------------------------------
#  Main

CMD=${1:-}
(( $# )) && shift
case $CMD in
    start)   cmd_start "$@" ;;
    stop)    cmd_stop "$@" ;;
    rekey)   cmd_rekey "$@" ;;
    status)  cmd_status "$@" ;;
    doctor)  cmd_doctor "$@" ;;
    engines) cmd_engines "$@" ;;
    test)    cmd_test "$@" ;;
    build)   cmd_build "$@" ;;
    bench)   cmd_bench "$@" ;;
    -h|--help|help)
        if [[ -n ${1:-} ]] && declare -F "usage_$1" >/dev/null; then "usage_$1"; else usage_main; fi ;;
    "") usage_main >&2; exit 2 ;;
    *) printf '%s: unknown command %s\n' "$PROG" "$CMD" >&2; usage_main >&2; exit 2 ;;
esac
