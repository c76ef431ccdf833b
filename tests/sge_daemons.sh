#  tests/sge_daemons.sh - a one-host Grid Engine cell of a test's own, from
#  Debian's packages (gridengine-master, gridengine-exec,
#  gridengine-client: DEPS_SGE in cluster.sh), inside a network namespace
#  the test creates. Sourced after tests/lib.sh, not a test itself.
#
#      sge_start DIR        # namespace SGE_NS, sge_qmaster, sge_execd, a
#                           # queue lp.q; exports SGE_ROOT, SGE_CELL, ...
#      in_ns COMMAND...     # runs COMMAND in the namespace (qsub, the
#                           # cluster, its clients)
#      sge_stop             # deletes every job, stops the daemons by pid,
#                           # removes the namespace
#
#  Grid Engine's daemons listen on every address (commlib binds
#  INADDR_ANY, with no setting to change it): they run in a network
#  namespace with nothing but its own loopback, and so do the controller,
#  the engines and the clients of a test that uses them (in_ns).
#
#  The cell lives in DIR: an SGE_ROOT whose bin, lib, utilbin and util are
#  links to Debian's /var/lib/gridengine, a cell "lp" with its own
#  bootstrap, BerkeleyDB spool, global configuration (min_uid 0: jobs run
#  as root here), exec host, queue lp.q (8 slots, bash) and a scheduler
#  that runs every second. The host is named localhost in the cell
#  (common/host_aliases maps this host's name to it: the name and
#  127.0.0.1 must agree both ways for commlib). Debian's own cell
#  (/var/lib/gridengine/default) is never read nor touched.
#
#  The daemons run in the foreground (SGE_ND=1) as the test's children, so
#  their pids are known; sge_stop deletes the jobs, waits until qstat lists
#  none, stops execd and qmaster by pid (SIGTERM, then SIGKILL after
#  15 s), kills what is left in the namespace (`ip netns pids`: all of it
#  was started by the test) and deletes the namespace.

SGE_NS=""
SGE_DIR=""
SGE_QMASTER_PID=""
SGE_EXECD_PID=""

in_ns() { ip netns exec "$SGE_NS" "$@"; }

sge_logs() {
    local f
    [ -n "$SGE_DIR" ] || return 0
    for f in "$SGE_DIR"/spool/qmaster/messages "$SGE_DIR"/spool/execd/*/messages \
             "$SGE_DIR"/log/*.out; do
        [ -s "$f" ] || continue
        echo "----- ${f#"$SGE_DIR"/} (last 20 lines) -----"
        tail -n 20 "$f"
    done
}

#  sge_edit OPTION SCRIPT: qconf OPTION (-msconf, -mconf...) with an
#  $EDITOR that applies the sed SCRIPT to the file qconf opens
sge_edit() {
    local what=$1 script=$2
    printf '#!/bin/sh\nexec sed -i %q "$1"\n' "$script" > "$SGE_DIR/editor.sh"
    chmod +x "$SGE_DIR/editor.sh"
    EDITOR=$SGE_DIR/editor.sh in_ns qconf "$what" >>"$SGE_DIR/log/qconf.out" 2>&1
}

sge_queue_ready() {
    #  the queue instance is up when qstat -f shows it without a state
    #  letter (u: execd unknown, a: alarm...)
    in_ns qstat -f -q lp.q 2>/dev/null | awk '$1 == "lp.q@localhost" { exit ($6 == "" ? 0 : 1) } END { if (NR == 0) exit 1 }'
}

#  sge_start DIR: the cell, its daemons and queue; waits (30 s at most)
#  until the queue takes jobs. Missing packages fail the test, and so does
#  a daemon that does not start (with its logs); only a test not run as
#  root, or a sandbox that refuses `ip netns add`, skips (77), saying why.
sge_start() {
    local d=$1 b err t0=$SECONDS host
    for b in sge_qmaster sge_execd qsub qstat qdel qconf ip; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/lib/gridengine/$b" ] \
            || { say "FAIL: $b not installed (DEPS_SGE of cluster.sh: gridengine-master gridengine-exec gridengine-client)"; exit 1; }
    done
    [ -d /var/lib/gridengine/utilbin ] || { say "FAIL: no /var/lib/gridengine/utilbin (gridengine-common)"; exit 1; }
    [ "$(id -u)" -eq 0 ] || skip "not root: Grid Engine's execd and a network namespace need root"
    SGE_NS=lpsge-$$
    if ! err=$(ip netns add "$SGE_NS" 2>&1); then
        SGE_NS=""
        skip "'ip netns add' is not permitted here ($err): Grid Engine listens on every address, so it runs in a namespace of the test's own"
    fi
    in_ns ip link set lo up || { say "FAIL: cannot bring lo up in $SGE_NS"; exit 1; }
    SGE_DIR=$d
    host=$(hostname)

    export SGE_ROOT=$d/root SGE_CELL=lp SGE_QMASTER_PORT=6444 SGE_EXECD_PORT=6445
    mkdir -p "$SGE_ROOT/lp/common" "$d/spool/qmaster" "$d/spool/execd" "$d/spool/db" "$d/log" \
        || { say "FAIL: mkdir in $d"; exit 1; }
    chmod 0755 "$d"
    for b in bin lib utilbin util; do ln -s "/var/lib/gridengine/$b" "$SGE_ROOT/$b"; done
    cat > "$SGE_ROOT/lp/common/bootstrap" <<EOF
admin_user              none
default_domain          none
ignore_fqdn             true
spooling_method         berkeleydb
spooling_lib            libspoolb
spooling_params         $d/spool/db
binary_path             /usr/sbin
qmaster_spool_dir       $d/spool/qmaster
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
EOF
    echo "$host" > "$SGE_ROOT/lp/common/act_qmaster"
    #  one name for this host, whichever way it is looked up
    echo "localhost $host $(hostname -s)" > "$SGE_ROOT/lp/common/host_aliases"
    sed -e "s#^execd_spool_dir .*#execd_spool_dir $d/spool/execd#" \
        -e 's#^min_uid .*#min_uid 0#' -e 's#^min_gid .*#min_gid 0#' \
        -e 's#^mailer .*#mailer /bin/true#' \
        /usr/share/gridengine/default-configuration > "$d/global.conf"
    {
        /usr/lib/gridengine/spoolinit berkeleydb libspoolb "$d/spool/db" init &&
        /usr/lib/gridengine/spooldefaults configuration "$d/global.conf" &&
        /usr/lib/gridengine/spooldefaults complexes /usr/share/gridengine/util/resources/centry &&
        /usr/lib/gridengine/spooldefaults usersets /usr/share/gridengine/util/resources/usersets &&
        /usr/lib/gridengine/spooldefaults managers root
    } > "$d/log/spoolinit.out" 2>&1 || { say "FAIL: cell spool: $(tail -n 5 "$d/log/spoolinit.out")"; exit 1; }

    SGE_ND=1 ip netns exec "$SGE_NS" /usr/lib/gridengine/sge_qmaster > "$d/log/qmaster.out" 2>&1 &
    SGE_QMASTER_PID=$!
    if ! wait_for 20 bash -c "ip netns exec $SGE_NS qconf -sh >/dev/null 2>&1"; then
        say "FAIL: sge_qmaster does not answer qconf after 20 s$(alive "$SGE_QMASTER_PID" || echo ": it exited")"
        sge_logs; exit 1
    fi
    in_ns qconf -as localhost >>"$d/log/qconf.out" 2>&1
    cat > "$d/host.conf" <<'EOF'
hostname              localhost
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
    {
        printf '%-21s %s\n' qname lp.q hostlist localhost seq_no 0 load_thresholds NONE \
            suspend_thresholds NONE nsuspend 1 suspend_interval 00:05:00 priority 0 \
            min_cpu_interval 00:05:00 processors UNDEFINED qtype "BATCH INTERACTIVE" \
            ckpt_list NONE pe_list NONE rerun FALSE slots 8 tmpdir /tmp shell /bin/bash \
            prolog NONE epilog NONE shell_start_mode unix_behavior starter_method NONE \
            suspend_method NONE resume_method NONE terminate_method NONE notify 00:00:60 \
            owner_list NONE user_lists NONE xuser_lists NONE subordinate_list NONE \
            complex_values NONE projects NONE xprojects NONE calendar NONE initial_state default
        for b in s_rt h_rt s_cpu h_cpu s_fsize h_fsize s_data h_data s_stack h_stack \
                 s_core h_core s_rss h_rss s_vmem h_vmem; do
            printf '%-21s %s\n' "$b" INFINITY
        done
    } > "$d/queue.conf"
    in_ns qconf -Ae "$d/host.conf" >>"$d/log/qconf.out" 2>&1 \
        || { say "FAIL: qconf -Ae: $(tail -n 3 "$d/log/qconf.out")"; sge_logs; exit 1; }
    in_ns qconf -Aq "$d/queue.conf" >>"$d/log/qconf.out" 2>&1 \
        || { say "FAIL: qconf -Aq: $(tail -n 3 "$d/log/qconf.out")"; sge_logs; exit 1; }
    #  schedule every second, and at once on submit and job end
    sge_edit -msconf 's/^schedule_interval .*/schedule_interval 0:0:1/; s/^flush_submit_sec .*/flush_submit_sec 1/; s/^flush_finish_sec .*/flush_finish_sec 1/' \
        || { say "FAIL: qconf -msconf: $(tail -n 3 "$d/log/qconf.out")"; exit 1; }

    SGE_ND=1 ip netns exec "$SGE_NS" /usr/lib/gridengine/sge_execd > "$d/log/execd.out" 2>&1 &
    SGE_EXECD_PID=$!
    if ! wait_for 30 sge_queue_ready; then
        alive "$SGE_EXECD_PID" || say "sge_execd exited"
        say "FAIL: queue lp.q not ready 30 s after sge_execd started: $(in_ns qstat -f 2>&1 | tail -n 2)"
        sge_logs; exit 1
    fi
    say "sge_qmaster ($SGE_QMASTER_PID), sge_execd ($SGE_EXECD_PID) in namespace $SGE_NS: queue lp.q ready after $((SECONDS - t0)) s"
}

sge_jobs() { in_ns qstat -u '*' 2>/dev/null | awk 'NR > 2 { print $1 }' | sort -u; }
sge_no_jobs() { [ -z "$(sge_jobs)" ]; }

#  sge_stop: jobs deleted, daemons stopped by pid, namespace emptied and
#  removed. 1 when something had to be killed.
sge_stop() {
    local rc=0 jobs p
    [ -n "$SGE_NS" ] || return 0
    if alive "$SGE_QMASTER_PID"; then
        jobs=$(sge_jobs)
        if [ -n "$jobs" ]; then
            in_ns qdel -f $jobs >/dev/null 2>&1
            wait_for 30 sge_no_jobs || { say "jobs still listed 30 s after qdel: $(sge_jobs | tr '\n' ' ')"; rc=1; }
        fi
    fi
    stop_pid "$SGE_EXECD_PID" sge_execd || rc=1
    stop_pid "$SGE_QMASTER_PID" sge_qmaster || rc=1
    wait "$SGE_EXECD_PID" "$SGE_QMASTER_PID" 2>/dev/null
    for p in $(ip netns pids "$SGE_NS" 2>/dev/null); do
        say "cleanup: pid $p still in namespace $SGE_NS ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)); killing it"
        kill -9 "$p" 2>/dev/null
        rc=1
    done
    ip netns del "$SGE_NS" 2>/dev/null
    SGE_NS="" SGE_QMASTER_PID="" SGE_EXECD_PID="" SGE_DIR=""
    return $rc
}
