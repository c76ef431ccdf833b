#!/usr/bin/env bash
#  netns_remote.sh BUILD_DIR
#
#  A "remote" engine: the engine runs in its own network namespace, joined
#  to the host by a veth pair, with nothing but a copy of lp-engine.json.
#  The controller binds the host end's address (--ip/--location); a client
#  on the host must see the engine and run an apply on it. A non-loopback
#  address makes the cluster secure by default (issue 12): the files carry
#  CURVE keys, the controller says so in its log, and the remote engine
#  gets in with the keys of its copy of lp-engine.json alone.
#
#  Needs root and iproute2. When the environment truly cannot do it (not
#  root, no `ip`, or the kernel/container refuses `ip netns add`), the test
#  prints "SKIP: <reason>" and exits 77 (ctest: Skipped).
set -u
BUILD=${1:?usage: netns_remote.sh BUILD_DIR}
NS=lptest-$$
VH=lpvh$$            # host end (interface names are at most 15 characters)
VN=lpvn$$            # namespace end
K=$(( $$ % 16384 ))
NET=10.231.$(( K / 64 ))
HOST_IP=$NET.$(( (K % 64) * 4 + 1 ))
NS_IP=$NET.$(( (K % 64) * 4 + 2 ))
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test netns_remote
PROFILE=""
ECOPY=""
ENGINE_PID=""
NS_MADE=0

#  the engine first (before its controller), then the namespace and link
test_cleanup() {
    stop_pid "$ENGINE_PID" lpengine
    wait "$ENGINE_PID" 2>/dev/null
    stop_local_cluster >/dev/null 2>&1
    if [ "$NS_MADE" = 1 ]; then
        ip netns del "$NS" 2>/dev/null
        ip link del "$VH" 2>/dev/null
    fi
}

#  the controller's log and the remote engine's
show_logs() {
    [ -n "$PROFILE" ] && [ -f "$PROFILE/log/lpcontroller.log" ] && {
        echo "----- lpcontroller.log -----"; tail -n 30 "$PROFILE/log/lpcontroller.log"; }
    [ -n "$ECOPY" ] && [ -f "$ECOPY/engine.log" ] && {
        echo "----- engine.log -----"; tail -n 30 "$ECOPY/engine.log"; }
}

die() { say "FAIL: $*"; show_logs; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need root)"
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (iproute2 not installed)"
need_built lpcontroller lpengine lpcall
if ! err=$(ip netns add "$NS" 2>&1); then
    skip "'ip netns add' is not permitted here: $err"
fi
NS_MADE=1
ip link add "$VH" type veth peer name "$VN" || die "cannot create a veth pair"
ip link set "$VN" netns "$NS" || die "cannot move $VN into $NS"
ip addr add "$HOST_IP/30" dev "$VH" || die "cannot set $HOST_IP on $VH"
ip link set "$VH" up || die "cannot bring $VH up"
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VN" || die "cannot set $NS_IP in $NS"
ip netns exec "$NS" ip link set "$VN" up || die "cannot bring $VN up"
ip netns exec "$NS" ip link set lo up || die "cannot bring lo up in $NS"
say "namespace $NS: engine side $NS_IP, controller side $HOST_IP"

lp_tmpdir PROFILE netns
lp_tmpdir ECOPY remote
start_local_cluster "$PROFILE" 0 --ip "$HOST_IP" --location "$HOST_IP"
grep -q "$HOST_IP" "$PROFILE/security/lp-engine.json" \
    || die "lp-engine.json does not use $HOST_IP: $(cat "$PROFILE/security/lp-engine.json")"
if grep -q '127\.0\.0\.1' "$PROFILE/security/lp-engine.json"; then
    die "lp-engine.json still points at 127.0.0.1: $(cat "$PROFILE/security/lp-engine.json")"
fi

grep -q '"curve"' "$PROFILE/security/lp-engine.json" \
    || die "a controller on $HOST_IP is not secure by default: no CURVE keys in lp-engine.json"
grep -q "secure: CURVE on every socket" "$PROFILE/log/lpcontroller.log" \
    || die "the controller's log does not say it runs secure"

# the remote side gets nothing but the engine connection file
cp "$PROFILE/security/lp-engine.json" "$ECOPY/lp-engine.json"
chmod 600 "$ECOPY/lp-engine.json"
ip netns exec "$NS" "$BUILD/lpengine" --file "$ECOPY/lp-engine.json" >"$ECOPY/engine.log" 2>&1 &
ENGINE_PID=$!       # ip netns exec execs the command: this is lpengine's pid
say "engine pid $ENGINE_PID started in $NS"

out=$("$BUILD/lpcall" "$PROFILE/security/lp-client.json" -n 1 -t 30000 \
      apply 'function(a, b) return a * b end' 6 7 2>&1) \
    || die "apply on the remote engine failed: $out"
echo "$out"
[ "$out" = "engine 0: 42" ] || die "expected 'engine 0: 42' from the one remote engine, got: $out"

# the engine really runs in the namespace: it reports its own pid
out=$("$BUILD/lpcall" "$PROFILE/security/lp-client.json" -n 1 execute \
      'lp and lp.id or 0' 2>&1) || die "execute on the remote engine failed: $out"
echo "$out"
if [ -x "$BUILD/pi" ]; then
    out=$("$BUILD/pi" "$PROFILE/security/lp-client.json" 200000 2>&1) || die "pi example failed: $out"
    echo "$out"
    echo "$out" | grep -q 'on 1 engines' || die "pi did not run on the 1 remote engine: $out"
fi
alive "$ENGINE_PID" || die "the remote engine exited"

stop_pid "$ENGINE_PID" lpengine || die "lpengine did not stop on SIGTERM"
wait "$ENGINE_PID" 2>/dev/null
ENGINE_PID=""
stop_local_cluster || die "lpcontroller did not stop cleanly on SIGTERM"
finish
