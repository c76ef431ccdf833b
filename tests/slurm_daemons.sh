#  tests/slurm_daemons.sh - a one-node Slurm cluster of the test's own, from
#  Debian's packages (munge, slurmctld, slurmd, slurm-client: DEPS_SLURM in
#  cluster.sh). Sourced after tests/lib.sh, not a test itself.
#
#      slurm_start DIR      # munged, slurmctld, slurmd; node idle; exports
#                           # SLURM_CONF; ends the test when they cannot run
#      ...sbatch, squeue, ./cluster.sh start --engines slurm...
#      slurm_stop           # cancels every job, stops the daemons by pid
#
#  Everything lives in DIR (a folder of the test's, lp_tmpdir): a munge key
#  made here and munged's socket, pid and seed files; a slurm.conf written
#  here (this host's short name as the only node, CPUs from nproc,
#  proctrack/linuxproc, task/none, no cgroup, no accounting, MpiDefault=none,
#  ports picked free; the daemons listen on 127.0.0.1 alone:
#  CommunicationParameters=NoCtldInAddrAny,NoInAddrAny with the node and
#  controller at 127.0.0.1); state, spool, pid and log files. The
#  daemons run in the foreground (-D, munged -F) as the test's children, so
#  their pids are known without pid files; the system's own Slurm and munge
#  (/etc/slurm, /run/munge) are never read nor touched.
#
#  The partition oversubscribes (OverSubscribe=FORCE:8): the tests run more
#  engines than this machine has CPUs, as one would on a laptop.
#
#  slurm_stop runs from the test's cleanup too (call it in test_cleanup):
#  it cancels the jobs of this private controller (all of them are the
#  test's), waits until squeue lists none, stops slurmd, slurmctld and
#  munged by pid (SIGTERM, then SIGKILL after 15 s), and, as a last
#  resort, kills what still carries SLURM_CONF=DIR/slurm.conf in its
#  environment (job scripts and their engines, started for this test
#  alone).

SLURM_DIR=""
MUNGED_PID=""
SLURMCTLD_PID=""
SLURMD_PID=""

#  slurm_port: a TCP port nothing listens on, below the kernel's range of
#  ephemeral ports (which the clusters of other tests bind with tcp://*)
slurm_port() {
    local p used low=32768 high
    read -r low high < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
    [ "${low:-0}" -gt 12000 ] 2>/dev/null || low=32768
    used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
    while :; do
        p=$(( 10000 + RANDOM % (low - 10000) ))
        echo "$used" | grep -qx "$p" || { echo "$p"; return; }
    done
}

#  slurm_logs: the daemons' logs (last 25 lines each), for a failure
slurm_logs() {
    local f
    [ -n "$SLURM_DIR" ] || return 0
    for f in "$SLURM_DIR"/log/*.log "$SLURM_DIR"/log/*.out; do
        [ -s "$f" ] || continue
        echo "----- $(basename "$f") (last 25 lines) -----"
        tail -n 25 "$f"
    done
}

#  slurm_node_state: the node's state as sinfo says it ("idle", "mixed"...)
slurm_node_state() {
    timeout 10 sinfo -h -N -n "$SLURM_NODE" -o %T 2>/dev/null
}

slurm_node_idle() { [ "$(slurm_node_state)" = idle ]; }

#  true once the node is idle, or once a daemon has exited
slurm_up_or_dead() {
    alive "$SLURMCTLD_PID" && alive "$SLURMD_PID" || return 0
    slurm_node_idle
}

#  slurm_start DIR: starts the daemons and waits (60 s at most) until the
#  node is idle. Missing packages fail the test (./cluster.sh test installs
#  them), and so does a daemon that does not start (with its logs): they
#  run as root in this sandbox (gVisor), so "cannot run here" is a skip
#  (77) only for a test not run as root.
slurm_start() {
    local d=$1 b t0=$SECONDS cport dport
    for b in munged mungekey slurmctld slurmd sbatch squeue scancel sinfo; do
        command -v "$b" >/dev/null 2>&1 \
            || { say "FAIL: $b not installed (DEPS_SLURM of cluster.sh: munge slurmctld slurmd slurm-client)"; exit 1; }
    done
    [ "$(id -u)" -eq 0 ] || skip "not root: slurmd must run as root to start jobs as their user"
    SLURM_DIR=$d
    SLURM_NODE=$(hostname -s)
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" || { say "FAIL: mkdir in $d"; exit 1; }
    chmod 0755 "$d"                 # munged wants its socket's folders open
    chmod 0700 "$d/munge" "$d/state" "$d/spool"

    #  munge: a key of our own, its own socket, pid and seed files
    mungekey -c -b 1024 -k "$d/munge/munge.key" >"$d/log/mungekey.out" 2>&1 \
        || { say "FAIL: mungekey: $(cat "$d/log/mungekey.out")"; exit 1; }
    munged -F -f -S "$d/munge/sock" --key-file="$d/munge/munge.key" \
        --log-file="$d/log/munged.log" --pid-file="$d/munge/munged.pid" \
        --seed-file="$d/munge/seed" >"$d/log/munged.out" 2>&1 &
    MUNGED_PID=$!
    if ! wait_for 30 test -S "$d/munge/sock"; then
        say "FAIL: munged made no socket in 30 s$(alive "$MUNGED_PID" || echo ": it exited")"
        slurm_logs; exit 1
    fi

    #  slurmctld and slurmd: a daemon that exits at start (a port taken
    #  between the check and the bind; slurmscriptd not answering in time
    #  on a machine under heavy load) is retried twice with new ports
    local attempt
    for attempt in 1 2 3; do
        cport=$(slurm_port)
        dport=$(slurm_port)
        [ "$dport" = "$cport" ] && dport=$((cport + 1))
        cat > "$d/slurm.conf" <<EOF
# written by tests/slurm_daemons.sh for one test: a node of this host
ClusterName=lptest
SlurmctldHost=$SLURM_NODE(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
PlugStackConfig=$d/plugstack.conf
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$SLURM_NODE NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=lp Nodes=$SLURM_NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
        : > "$d/plugstack.conf"         # no SPANK plugins
        export SLURM_CONF=$d/slurm.conf
        slurmctld -D -i -f "$SLURM_CONF" >"$d/log/slurmctld.out" 2>&1 &
        SLURMCTLD_PID=$!
        slurmd -D -f "$SLURM_CONF" -N "$SLURM_NODE" >"$d/log/slurmd.out" 2>&1 &
        SLURMD_PID=$!
        if ! wait_for 60 slurm_up_or_dead; then
            say "FAIL: node $SLURM_NODE not idle 60 s after the daemons started (sinfo: '$(slurm_node_state)')"
            slurm_logs
            exit 1
        fi
        if alive "$SLURMCTLD_PID" && alive "$SLURMD_PID"; then
            say "munged ($MUNGED_PID), slurmctld ($SLURMCTLD_PID), slurmd ($SLURMD_PID): node $SLURM_NODE idle after $((SECONDS - t0)) s (ports $cport, $dport)"
            return 0
        fi
        say "attempt $attempt: slurmctld or slurmd exited at start:"
        slurm_logs
        stop_pid "$SLURMCTLD_PID" slurmctld
        stop_pid "$SLURMD_PID" slurmd
        wait "$SLURMCTLD_PID" "$SLURMD_PID" 2>/dev/null
        rm -rf "$d/state"/* "$d/spool"/*
        mkdir -p "$d/log/attempt$attempt" && mv "$d"/log/slurm*.* "$d/log/attempt$attempt/" 2>/dev/null
    done
    say "FAIL: slurmctld or slurmd exited at start three times (logs above)"
    exit 1
}

#  slurm_jobs: ids of the jobs the controller still lists (any state)
slurm_jobs() {
    timeout 10 squeue -h -o %A 2>/dev/null
}

slurm_no_jobs() { [ -z "$(slurm_jobs)" ]; }

#  slurm_env_pids: processes whose environment names our slurm.conf
slurm_env_pids() {
    local e p
    [ -n "$SLURM_DIR" ] || return 0
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
        grep -qszxF "SLURM_CONF=$SLURM_DIR/slurm.conf" "$e" || continue
        #  our own shell and its helpers share the variable: jobs only
        grep -qsz '^SLURM_JOB_ID=' "$e" && echo "$p"
    done
}

#  slurm_stop: every job cancelled, the daemons stopped by pid. 1 when
#  something had to be killed.
slurm_stop() {
    local rc=0 jobs p
    [ -n "$SLURM_DIR" ] || return 0
    if alive "$SLURMCTLD_PID"; then
        jobs=$(slurm_jobs)
        if [ -n "$jobs" ]; then
            timeout 10 scancel $jobs 2>/dev/null
            wait_for 30 slurm_no_jobs || { say "jobs still listed 30 s after scancel: $(slurm_jobs | tr '\n' ' ')"; rc=1; }
        fi
    fi
    for p in $(slurm_env_pids); do
        say "cleanup: pid $p of a Slurm job still running ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)); killing it"
        kill -9 "$p" 2>/dev/null
        rc=1
    done
    stop_pid "$SLURMD_PID" slurmd || rc=1
    stop_pid "$SLURMCTLD_PID" slurmctld || rc=1
    stop_pid "$MUNGED_PID" munged || rc=1
    wait "$SLURMD_PID" "$SLURMCTLD_PID" "$MUNGED_PID" 2>/dev/null
    SLURMD_PID="" SLURMCTLD_PID="" MUNGED_PID="" SLURM_DIR=""
    return $rc
}
