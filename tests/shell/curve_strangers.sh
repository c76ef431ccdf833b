#!/usr/bin/env bash
#  curve_strangers.sh BUILD_DIR
#
#  Issue 12: nobody in. Against a --secure cluster (two engines):
#  - subscribers to iopub without the keys (no CURVE, or CURVE with the
#    controller's public key but a key pair of their own) receive nothing
#    while `%px print(...)` runs; the same keyless subscriber on an
#    --insecure cluster does receive it (so the check can see output);
#  - a client whose connection file holds another key pair cannot
#    connect: lpsh says the controller refused its key, and the
#    controller's log names the refused key;
#  - bounded strangers: 16 connections each sending a 127 MB frame, as
#    keyless DEALERs to the data channels (mux, task) and as raw TCP
#    peers speaking ZMTP to the data and small channels (mux,
#    registration, notification), keep the controller's peak RSS (VmHWM,
#    reset first through /proc/PID/clear_refs) under 50 MB; the cluster
#    still works. The same on the --insecure cluster, on every port of
#    both connection files (a raw ZMTP peer with the NULL mechanism and
#    the socket type the port accepts, and keyless DEALERs on a client and
#    an engine ROUTER port): no frame over the 2 MiB cap of the data channels
#    (docs/protocol.md, Frame sizes) is read.
#
#  Needs /usr/bin/python3 with python3-zmq (cluster.sh's test packages).
set -u
BUILD=${1:?usage: curve_strangers.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test curve_strangers
STRANGER=$LP_TEST_ROOT/tests/tools/lp_stranger.py
/usr/bin/python3 -c 'import zmq' 2>/dev/null || skip "no python3-zmq for /usr/bin/python3"
need_built lpcontroller lpengine lpsh

endpoint() {    # FILE CHANNEL
    /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoints"][sys.argv[2]])' "$1" "$2"
}
curve_field() { # FILE FIELD
    /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["curve"][sys.argv[2]])' "$1" "$2"
}

#  listen DIR TAG ENDPOINT [SERVER_KEY]: a stranger subscriber in the
#  background (pid in PID_<TAG>), once it has tried its connection.
listen() {
    local dir=$1 tag=$2
    /usr/bin/python3 "$STRANGER" sub "${@:3}" > "$dir/$tag.out" 2>&1 &
    lp_track $!
    printf -v "PID_$tag" '%s' $!
    wait_for 20 grep -qs '^ready' "$dir/$tag.out" || fail "$tag: subscriber not ready: $(cat "$dir/$tag.out")"
}

#  heard DIR TAG: stops the stranger (SIGTERM, then waits for it: not in a
#  subshell); HEARD = the number of messages it received.
heard() {
    local pid_name=PID_$2
    kill -TERM "${!pid_name}"
    wait "${!pid_name}" 2>/dev/null
    HEARD=$(sed -n 's/^received //p' "$1/$2.out")
}

print_on_engines() {    # FILE
    local out
    out=$(timeout 60 "$BUILD/lpsh" --file "$1" --wait 2 -e '%px print("overheard-" .. "marker")' 2>&1) \
        || { fail "lpsh failed: $out"; return; }
    [ "$(grep -c 'overheard-marker' <<< "$out")" = 2 ] || fail "lpsh did not see both engines: $out"
}

#  Peak RSS of the controller: reset (VmHWM), read in kB
reset_peak() { echo 5 > "/proc/$CTRL_PID/clear_refs"; }
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$CTRL_PID/status"; }
#  flood FILE CHANNEL MODE [SOCKET_TYPE]: 16 x 127 MB to the channel's port
flood() {
    local out
    out=$(timeout 120 /usr/bin/python3 "$STRANGER" flood "$(endpoint "$1" "$2")" 16 127 "${@:3}" 2>&1) \
        || fail "flood $2 ${*:3} failed: $out"
    say "16 x 127 MB to $2 (${*:3}): $out; controller peak RSS now $(peak_kb) kB"
}

#  ---- the control: an insecure cluster lets a keyless subscriber read ---
lp_tmpdir PLAIN plain
start_local_cluster "$PLAIN" 2 --insecure > /dev/null
listen "$PLAIN" plain "$(endpoint "$PLAIN/security/lp-client.json" iopub)"
print_on_engines "$PLAIN/security/lp-client.json"
heard "$PLAIN" plain
n=$HEARD
say "--insecure: a keyless iopub subscriber received ${n:-?} message(s)"
[ "${n:-0}" -gt 0 ] || fail "--insecure: the keyless subscriber heard nothing (the check cannot see)"

#  ---- insecure, bounded strangers: every port, 16 x 127 MB each ---------
CFILE=$PLAIN/security/lp-client.json
EFILE=$PLAIN/security/lp-engine.json
if reset_peak 2>/dev/null; then
    say "--insecure: controller peak RSS reset: $(peak_kb) kB"
    for ch in registration mux control task; do
        flood "$CFILE" $ch null DEALER
        flood "$EFILE" $ch null DEALER
    done
    flood "$CFILE" iopub null SUB
    flood "$CFILE" notification null SUB
    flood "$EFILE" iopub null PUB
    flood "$EFILE" hb_ping null SUB
    flood "$EFILE" hb_pong null DEALER
    flood "$CFILE" mux zmq
    flood "$EFILE" task zmq
    peak=$(peak_kb)
    say "--insecure: controller peak RSS after 20 floods: $peak kB"
    [ "${peak:-999999}" -lt 51200 ] \
        || fail "--insecure: controller peak RSS $peak kB after the strangers, 50 MB or more"
else
    say "cannot reset VmHWM through /proc/$CTRL_PID/clear_refs: the RSS checks are skipped"
fi
print_on_engines "$CFILE"
alive "$CTRL_PID" || fail "--insecure: the controller died"
stop_local_cluster || fail "--insecure: the controller did not stop cleanly"

#  ---- secure: subscribers without the keys hear nothing -----------------
lp_tmpdir DIR secure
start_local_cluster "$DIR" 2 --secure > /dev/null
FILE=$DIR/security/lp-client.json
IOPUB=$(endpoint "$FILE" iopub)
SERVER_KEY=$(curve_field "$FILE" server_key)
listen "$DIR" nokey "$IOPUB"
listen "$DIR" otherkey "$IOPUB" "$SERVER_KEY"
print_on_engines "$FILE"
heard "$DIR" nokey
n1=$HEARD
heard "$DIR" otherkey
n2=$HEARD
say "--secure: iopub subscribers received ${n1:-?} (no key) and ${n2:-?} (unknown key) message(s)"
[ "$n1" = 0 ] || fail "a subscriber without keys received $n1 message(s) on iopub"
[ "$n2" = 0 ] || fail "a subscriber with an unknown key received $n2 message(s) on iopub"

#  ---- a client with another key pair ------------------------------------
/usr/bin/python3 - "$FILE" "$DIR/wrong.json" <<'EOF'
import json, sys, zmq
conf = json.load(open(sys.argv[1]))
public, secret = zmq.curve_keypair()
conf["curve"]["public_key"] = public.decode()
conf["curve"]["secret_key"] = secret.decode()
json.dump(conf, open(sys.argv[2], "w"))
EOF
chmod 600 "$DIR/wrong.json"
WRONG_KEY=$(curve_field "$DIR/wrong.json" public_key)
out=$(timeout 30 "$BUILD/lpsh" --file "$DIR/wrong.json" --timeout 5000 -e 'print(1)' 2>&1)
rc=$?
say "wrong key: lpsh exited $rc: $out"
[ "$rc" -ne 0 ] || fail "a client with a wrong key connected"
grep -q "refused this client's CURVE key" <<< "$out" || fail "lpsh does not say the key was refused: $out"
wait_for 10 grep -qF "CURVE key $WRONG_KEY is not" "$DIR/log/lpcontroller.log" \
    || fail "the controller's log does not name the refused key $WRONG_KEY"
grep -F "refused a connection" "$DIR/log/lpcontroller.log" | head -n 1

#  ---- bounded strangers ---------------------------------------------------
if reset_peak 2>/dev/null; then
    say "controller peak RSS reset: $(peak_kb) kB"
    flood "$FILE" mux zmq
    flood "$FILE" task zmq
    flood "$FILE" registration raw
    flood "$FILE" notification raw
    flood "$FILE" mux raw
    peak=$(peak_kb)
    [ "${peak:-999999}" -lt 51200 ] || fail "controller peak RSS $peak kB after the strangers, 50 MB or more"
else
    say "cannot reset VmHWM through /proc/$CTRL_PID/clear_refs: the RSS checks are skipped"
fi
print_on_engines "$FILE"
alive "$CTRL_PID" || fail "the controller died"
stop_local_cluster || fail "--secure: the controller did not stop cleanly"
finish
