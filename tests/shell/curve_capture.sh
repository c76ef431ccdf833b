#!/usr/bin/env bash
#  curve_capture.sh BUILD_DIR
#
#  Issue 12: nothing overheard. A packet capture on the loopback (tcpdump,
#  started by the test, filtered on the cluster's ports, stopped by pid)
#  while lpsh runs `%px print("secret-" .. "marker")` on two engines: an
#  insecure cluster (--insecure) sends "secret-marker" in clear text (the
#  capture holds it: the check can see it), a --secure one does not.
#  The marker is built on the engine, so only the output can carry it.
#
#  Needs root and tcpdump (cluster.sh's test packages); else exits 77.
set -u
BUILD=${1:?usage: curve_capture.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test curve_capture
TCPDUMP_PID=""

test_cleanup() {
    [ -n "$TCPDUMP_PID" ] && stop_pid "$TCPDUMP_PID" tcpdump
    return 0
}

[ "$(id -u)" -eq 0 ] || skip "not root (capturing packets needs root)"
command -v tcpdump >/dev/null 2>&1 || skip "no tcpdump (apt-get install tcpdump)"
need_built lpcontroller lpengine lpsh

#  The ports of a profile's connection files, as a tcpdump filter.
port_filter() {
    /usr/bin/python3 - "$1/security/lp-client.json" "$1/security/lp-engine.json" <<'EOF'
import json, sys
ports = set()
for path in sys.argv[1:]:
    for ep in json.load(open(path))["endpoints"].values():
        ports.add(ep.rsplit(":", 1)[1])
print("tcp and (" + " or ".join("port " + p for p in sorted(ports)) + ")")
EOF
}

#  capture DIR MODE: starts a cluster (MODE --secure or --insecure), runs
#  the print under tcpdump; leaves the capture in DIR/capture.pcap.
capture() {
    local dir=$1 mode=$2 filter out
    start_local_cluster "$dir" 2 "$mode" > /dev/null
    filter=$(port_filter "$dir") || { fail "cannot read the ports of $dir"; return; }
    say "$mode: capturing on lo: $filter"
    #  --immediate-mode: packets are written as they come, not when a
    #  buffer block fills (else a short capture may show nothing)
    tcpdump -i lo --immediate-mode -U -s 0 -w "$dir/capture.pcap" "$filter" 2> "$dir/tcpdump.err" &
    TCPDUMP_PID=$!
    wait_for 20 grep -qs "listening on" "$dir/tcpdump.err" \
        || { fail "tcpdump did not start: $(cat "$dir/tcpdump.err")"; return; }
    out=$(timeout 60 "$BUILD/lpsh" --file "$dir/security/lp-client.json" --wait 2 \
          -e '%px print("secret-" .. "marker")' 2>&1) || fail "$mode: lpsh failed: $out"
    [ "$(grep -c '^\[stdout:[01]\] secret-marker$' <<< "$out")" = 2 ] \
        || fail "$mode: the client did not see both engines' output: $out"
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" 2>/dev/null
    TCPDUMP_PID=""
    say "$mode: $(grep 'packets captured' "$dir/tcpdump.err")"
    cp "$dir/security/lp-client.json" "$dir/client-copy.json"     #  removed at stop
    stop_local_cluster || fail "$mode: the controller did not stop cleanly"
}

lp_tmpdir PLAIN plain
capture "$PLAIN" --insecure
grep -q '"curve"' "$PLAIN/client-copy.json" \
    && fail "--insecure: lp-client.json carries CURVE keys"
n=$(grep -a -c "secret-marker" "$PLAIN/capture.pcap")
say "--insecure: the capture holds \"secret-marker\" in $n packet(s)"
[ "$n" -gt 0 ] || fail "--insecure: no \"secret-marker\" in the capture (the check cannot see clear text)"

lp_tmpdir SECURE secure
capture "$SECURE" --secure
grep -q '"curve"' "$SECURE/client-copy.json" \
    || fail "--secure: lp-client.json carries no CURVE keys"
n=$(grep -a -c "secret-marker" "$SECURE/capture.pcap")
packets=$(grep -o '^[0-9]* packets captured' "$SECURE/tcpdump.err" | cut -d' ' -f1)
say "--secure: the capture holds \"secret-marker\" in $n packet(s) (of ${packets:-?})"
[ "$n" = 0 ] || fail "--secure: \"secret-marker\" travelled in clear text"
[ "${packets:-0}" -gt 0 ] || fail "--secure: nothing captured (is the filter right?)"
finish
