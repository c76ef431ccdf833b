#!/usr/bin/env bash
#  launcher_ssh.sh BUILD_DIR
#
#  `./cluster.sh start --engines ssh` against the real sshd (openssh-server)
#  on two "hosts": two network namespaces made by the test, each joined to
#  this host by a veth pair, each with its own address and an sshd of the
#  test's own (sshd -f CONFIG on port 2222, host key, authorized_keys in a
#  temporary folder; StrictModes and PAM off). The login is root's, with a
#  home of the test's own: each sshd runs in a mount namespace of its own
#  where /etc/passwd is a bind-mounted copy whose root entry names a
#  temporary home, so the machine's /root (its .bashrc and whatever that
#  runs) plays no part, and nothing of the machine changes. The client side is a key
#  made by the test, held by an ssh-agent the test starts, and an ssh
#  config of the test's own (--launcher-opt ssh_config=FILE): one host is
#  named by its address with the port in the hosts list
#  (root@ADDR%2222:2), the other by a Host entry of that config (lpnode2:2).
#  Nothing of the machine's /etc/ssh or ~/.ssh is used or changed.
#
#  The controller binds the host end of the first veth (a non-loopback
#  address: secure, CURVE, by default). Checks what a user would:
#  - 4 engines registered when start returns (the time is printed);
#  - %px in lpsh (-e) on all of them answers 4 different lp.id, and
#    each engine's SSH_CONNECTION names the namespace address it was
#    started on, 2 engines on each;
#  - the engines' copy of lp-engine.json has mode 0600;
#  - ./cluster.sh stop leaves no engine and no sshd session running, also
#    after the controller was killed (-9): it runs the launcher's stop;
#  - a host that fails (an address of the namespace range where nothing
#    answers) fails the start with that host's name, and what the good
#    host started is stopped.
#
#  Needs root, iproute2 and openssh-server (DEPS_SSH in cluster.sh). When
#  the machine truly cannot (not root, `ip netns add` refused, no sshd
#  installed) it prints "SKIP: <reason>" and exits 77.
set -u
BUILD=${1:?usage: launcher_ssh.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test launcher_ssh
SSHD=/usr/sbin/sshd
K=$(( $$ % 2048 ))
NET=10.232.$(( K / 8 ))
BASE=$(( (K % 8) * 32 ))
HOST1=$NET.$(( BASE + 1 ));  NS1_IP=$NET.$(( BASE + 2 ));  BAD_IP=$NET.$(( BASE + 3 ))
HOST2=$NET.$(( BASE + 9 ));  NS2_IP=$NET.$(( BASE + 10 ))
NS1=lpssh1-$$; NS2=lpssh2-$$
VH1=lpsh1$$; VN1=lpsn1$$; VH2=lpsh2$$; VN2=lpsn2$$
NS_MADE=""
SSHD_PIDS=""
AGENT_PID=""
RUN_SSHD_MADE=""

test_cleanup() {
    #  the cluster first (its launcher's stop needs the sshds), then ours
    if [ -n "${NAME:-}" ] && [ -d "${DIR:-}" ]; then
        timeout 60 "$CLI" stop --profile "$NAME" >/dev/null 2>&1
    fi
    for p in $SSHD_PIDS; do stop_pid "$p" sshd; done
    [ -n "$AGENT_PID" ] && stop_pid "$AGENT_PID" ssh-agent
    for ns in $NS_MADE; do ip netns del "$ns" 2>/dev/null; done
    ip link del "$VH1" 2>/dev/null
    ip link del "$VH2" 2>/dev/null
    [ -n "$RUN_SSHD_MADE" ] && rmdir /run/sshd 2>/dev/null
}

die() { say "FAIL: $*"; show_logs 40; for f in "$T"/sshd-*.log; do [ -f "$f" ] && { echo "----- $f"; tail -n 20 "$f"; }; done; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need root)"
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (iproute2 not installed)"
[ -x "$SSHD" ] || skip "no $SSHD: openssh-server is not installed (./cluster.sh test installs DEPS_SSH)"
for c in ssh ssh-keygen ssh-agent ssh-add; do
    command -v "$c" >/dev/null 2>&1 || skip "no $c (openssh-client is not installed)"
done
cli_profile ssh "ssh$$"
need_built lpcontroller lpengine lpsh
lp_tmpdir T sshtest
chmod 755 "$T"

# --- two hosts: namespaces with their own addresses -------------------------
if ! err=$(ip netns add "$NS1" 2>&1); then
    skip "'ip netns add' is not permitted here: $err"
fi
NS_MADE=$NS1
ip netns add "$NS2" || die "cannot add namespace $NS2"
NS_MADE="$NS1 $NS2"
make_host() {   # ns host_end ns_end host_ip ns_ip
    ip link add "$2" type veth peer name "$3" || die "cannot create veth $2"
    ip link set "$3" netns "$1" || die "cannot move $3 into $1"
    ip addr add "$4/29" dev "$2" || die "cannot set $4"
    ip link set "$2" up || die "cannot bring $2 up"
    ip netns exec "$1" ip addr add "$5/29" dev "$3" || die "cannot set $5 in $1"
    ip netns exec "$1" ip link set "$3" up || die "cannot bring $3 up in $1"
    ip netns exec "$1" ip link set lo up || die "cannot bring lo up in $1"
    #  the controller's address (on the other veth) through this one
    ip netns exec "$1" ip route add default via "$4" || die "no default route in $1"
}
make_host "$NS1" "$VH1" "$VN1" "$HOST1" "$NS1_IP"
make_host "$NS2" "$VH2" "$VN2" "$HOST2" "$NS2_IP"
say "hosts: $NS1 at $NS1_IP, $NS2 at $NS2_IP; controller on $HOST1; nothing at $BAD_IP"

# --- keys, sshd in each namespace ---------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C "launcher_ssh test" -f "$T/id_ed25519" || die "ssh-keygen (user key)"
ssh-keygen -q -t ed25519 -N '' -f "$T/host_key" || die "ssh-keygen (host key)"
mkdir -m 700 "$T/home" || die "cannot create $T/home"
sed "s|^root:[^:]*:0:0:[^:]*:[^:]*:|root:x:0:0:root:$T/home:|" /etc/passwd > "$T/passwd"
grep -q "^root:x:0:0:root:$T/home:" "$T/passwd" || die "no root entry in /etc/passwd to copy"
cp "$T/id_ed25519.pub" "$T/authorized_keys"
chmod 600 "$T/authorized_keys"
if [ ! -d /run/sshd ]; then
    #  sshd's privilege separation folder (what the package's service makes)
    mkdir -m 755 /run/sshd || die "cannot create /run/sshd"
    RUN_SSHD_MADE=1
fi
start_sshd() {  # n ns address
    cat > "$T/sshd-$1.conf" <<EOF
Port 2222
ListenAddress $3
HostKey $T/host_key
PidFile none
AuthorizedKeysFile $T/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
EOF
    #  ip netns exec, unshare and sh each exec the next: $! is sshd's pid
    ip netns exec "$2" unshare -m --propagation private \
        sh -c 'mount --bind "$1" /etc/passwd && exec "$2" -D -e -f "$3"' \
        sh "$T/passwd" "$SSHD" "$T/sshd-$1.conf" > "$T/sshd-$1.log" 2>&1 &
    local pid=$!
    SSHD_PIDS="$SSHD_PIDS $pid"
    if ! wait_for 20 grep -q "Server listening on $3 port 2222" "$T/sshd-$1.log"; then
        alive "$pid" || die "sshd in $2 exited: $(tail -n 5 "$T/sshd-$1.log")"
        die "sshd in $2 does not listen on $3:2222 after 20 s"
    fi
    say "sshd pid $pid listening on $3:2222 in $2"
}
start_sshd 1 "$NS1" "$NS1_IP"
start_sshd 2 "$NS2" "$NS2_IP"

#  the user's side: an agent holding the key, an ssh config with a Host entry
eval "$(ssh-agent -s)" >/dev/null || die "cannot start ssh-agent"
AGENT_PID=$SSH_AGENT_PID
ssh-add -q "$T/id_ed25519" 2>/dev/null || die "ssh-add failed"
cat > "$T/ssh_config" <<EOF
Host lpnode2
    HostName $NS2_IP
    Port 2222
Host *
    User root
    UserKnownHostsFile $T/known_hosts
    StrictHostKeyChecking accept-new
    LogLevel ERROR
EOF
SSH_OPTS=(--launcher-opt "ssh_config=$T/ssh_config" --launcher-opt connect_timeout=5)
#  the default remote_dir, under the (test's) remote home
REMOTE=$T/home/.luaparallel/remote/profile_$NAME
cd "$ROOT" || exit 1

#  pids of lpengine processes whose command line names the remote folder
remote_engines() { pgrep -f -- "$REMOTE/" 2>/dev/null | tr '\n' ' '; }
#  sshd processes under our listeners (sessions still open)
sessions() { local p; for p in $SSHD_PIDS; do pgrep -P "$p"; done | tr '\n' ' '; }

# --- 2 hosts x 2 engines --------------------------------------------------------
t0=$(date +%s%N)
out=$(timeout 120 "$CLI" start --engines ssh --hosts "root@$NS1_IP%2222:2,lpnode2:2" \
      "${SSH_OPTS[@]}" --ip "$HOST1" --profile "$NAME" --no-build 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$out"
[ "$rc" -eq 0 ] || die "./cluster.sh start --engines ssh exited $rc"
say "measured: ./cluster.sh start --engines ssh to 4 engines registered: $ms ms"
echo "$out" | grep -qE '\b4 engines registered' || fail "start did not say 4 engines registered"
read_cluster_pids "$DIR" || die "no controller"
cat "$DIR/log/launcher.log"
# shellcheck disable=SC2046  # a list of pids
lp_track $(remote_engines)

#  what a user types: %px in lpsh
out=$(timeout 60 "$BUILD/lpsh" --file "$DIR/security/lp-client.json" --wait 4 \
      -e '%px return lp.id .. " " .. (os.getenv("SSH_CONNECTION") or "no-ssh")' 2>&1) \
    || fail "%px on the 4 engines failed: $out"
echo "$out"
#  lines: Out[K:1]: "ID CLIENT_ADDR PORT SERVER_ADDR PORT"
out=$(echo "$out" | grep '^Out\[' | tr -d '"')
ids=$(echo "$out" | awk '{ print $2 }' | sort -u | wc -l)
[ "$ids" -eq 4 ] || fail "expected 4 different lp.id, got $ids: $out"
#  SSH_CONNECTION = "client port server port": the server is the host
on1=$(echo "$out" | awk -v a="$NS1_IP" '$5 == a' | wc -l)
on2=$(echo "$out" | awk -v a="$NS2_IP" '$5 == a' | wc -l)
[ "$on1" -eq 2 ] && [ "$on2" -eq 2 ] \
    || fail "expected 2 engines started over ssh on $NS1_IP and 2 on $NS2_IP, got $on1 and $on2: $out"
grep -q "Accepted publickey for root" "$T/sshd-1.log" || fail "sshd 1 did not log a key login"
grep -q "Accepted publickey for root" "$T/sshd-2.log" || fail "sshd 2 did not log a key login"
mode=$(stat -c %a "$REMOTE/lp-engine.json" 2>/dev/null)
[ "$mode" = 600 ] || fail "the copied lp-engine.json has mode '$mode', expected 600"
grep -q '"curve"' "$REMOTE/lp-engine.json" || fail "the cluster on $HOST1 is not secure (no CURVE keys)"

ENGINES=$(remote_engines)
[ -n "$ENGINES" ] || fail "no lpengine process names $REMOTE"
out=$(timeout 90 "$CLI" stop --profile "$NAME" 2>&1) || fail "./cluster.sh stop exited $?: $out"
echo "$out"
sed -n '/ stop$/,$p' "$DIR/log/launcher.log"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
for p in $ENGINES; do wait_gone "$p" 15 || fail "engine pid $p still running after stop"; done
[ -z "$(remote_engines)" ] || fail "engines left after stop: $(remote_engines)"
wait_for 10 test -z "$(sessions)" || fail "sshd sessions left after stop: $(sessions)"
[ -e "$REMOTE/lp-engine.json" ] && fail "stop left the copy of lp-engine.json (the cluster's keys) on the hosts"
[ -f "$DIR/launcher/launcher.env" ] && fail "launcher.env left after a clean stop"
CTRL_PID=""; ENGINE_PIDS=""

# --- the controller killed: ./cluster.sh stop still ends the remote engines ---
out=$(timeout 120 "$CLI" start --engines ssh --hosts "root@$NS1_IP%2222,lpnode2" -n 2 \
      "${SSH_OPTS[@]}" --ip "$HOST1" --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || die "second start (-n 2 over 2 hosts without counts) exited $rc"
echo "$out" | grep -qE '\b2 engines registered' || fail "-n 2 over 2 hosts: not 2 engines registered"
read_cluster_pids "$DIR" || die "no controller"
ENGINES=$(remote_engines)
lp_track $ENGINES
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 10 || fail "controller survived kill -9"
for p in $ENGINES; do alive "$p" || fail "engine $p ended with its controller (it should not)"; done
out=$(timeout 90 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop after kill -9 exited $?: $out"
echo "$out"
echo "$out" | grep -q 'launcher ssh: its engines stopped' || fail "stop after kill -9 did not run the launcher's stop: $out"
for p in $ENGINES; do wait_gone "$p" 15 || fail "engine pid $p still running after stop"; done
[ -z "$(remote_engines)" ] || fail "engines left after stop: $(remote_engines)"
CTRL_PID=""; ENGINE_PIDS=""

# --- a host that fails -------------------------------------------------------------
t0=$(date +%s%N)
out=$(timeout 120 "$CLI" start --engines ssh --hosts "root@$NS1_IP%2222:1,root@$BAD_IP%2222:1" \
      "${SSH_OPTS[@]}" --ip "$HOST1" --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
say "failed start returned in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ "$rc" -ne 0 ] || fail "start succeeded although $BAD_IP has no sshd"
echo "$out" | grep -q "launcher ssh" || fail "the error does not name the launcher: $out"
echo "$out" | grep -q "host root@$BAD_IP port 2222 failed" || fail "the error does not name the host $BAD_IP: $out"
echo "$out" | grep -q "host root@$NS1_IP port 2222 failed" && fail "the error blames the good host $NS1_IP: $out"
pid=$( { tr -dc '0-9' < "$DIR/pid/lpcontroller.pid"; } 2>/dev/null)
if [ -n "$pid" ]; then
    lp_track "$pid"
    wait_gone "$pid" 30 || fail "the controller still runs 30 s after its failed start"
fi
wait_for 15 test -z "$(remote_engines)" || fail "the good host's engine left running: $(remote_engines)"
wait_for 10 test -z "$(sessions)" || fail "sshd sessions left: $(sessions)"

# --- our sshds go ---------------------------------------------------------------------
for p in $SSHD_PIDS; do stop_pid "$p" sshd || fail "sshd $p needed SIGKILL"; done
for p in $SSHD_PIDS; do alive "$p" && fail "sshd $p still running"; done
SSHD_PIDS=""
finish
