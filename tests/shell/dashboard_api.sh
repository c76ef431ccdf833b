#!/usr/bin/env bash
#  dashboard_api.sh BUILD_DIR
#
#  Issue 14, "done" 1 (second test): the dashboard's /api/status against
#  lp_client_queue_status of the same cluster (tests/tools/lpdashcheck.c:
#  same engine ids, hosts, pids, states and queue figures under a load
#  that keeps them non-zero), first on an open dashboard, then on a
#  secure controller (--secure, CURVE): 401 without the token or with a
#  wrong one; 200 with `Authorization: Bearer`, with ?token= (which sets
#  the cookie) and with that cookie; the token file is mode 0600 and the
#  same after a restart (the dashboard asked for in lpcontroller_config.lua
#  this time). Also: the page, its script and its style sheet
#  come from the controller itself, the event stream sends a state, and
#  a request naming another host (DNS rebinding) is refused.
#  Needs curl (cluster.sh: DEPS_DASH).
set -u
BUILD=${1:?usage: dashboard_api.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test dashboard_api
command -v curl >/dev/null || skip "curl not installed (Debian package curl)"
need_built lpcontroller lpengine lpdashcheck

#  code URL [CURL ARGS...]: the HTTP status of a GET
code() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url"
}

#  answers URL: polled by wait_for; true once URL answers anything but
#  503 (a dashboard has no status before the hub's first snapshot)
answers() {
    local url=$1
    shift
    [ "$(code "$url" "$@")" != 503 ]
}

#  1. Open (loopback, not secure)
lp_tmpdir DIR dasha
start_local_cluster "$DIR" 4 --dashboard 127.0.0.1:0 >/dev/null
URL=$(cat "$DIR/security/dashboard.url" 2>/dev/null)
[[ $URL == http://127.0.0.1:* ]] || { fail "no address in security/dashboard.url ('$URL')"; finish; }
say "open dashboard at $URL"
[ -e "$DIR/security/dashboard.token" ] && fail "an open controller made a token file"
out=$("$BUILD/lpdashcheck" "$DIR/security/lp-client.json" "$URL" 2>&1)
rc=$?
say "$out"
[ "$rc" -eq 0 ] || fail "/api/status and lp_client_queue_status disagree (open dashboard)"
grep -q "engine 0 busy queue [3-9]" <<< "$out" || fail "engine 0 did not show its queue of 3 or more"
for f in "" dashboard.js dashboard.css; do
    [ "$(code "$URL$f")" = 200 ] || fail "GET /$f: not 200"
done
curl -s --max-time 10 "$URL" | grep -q '<script src="dashboard.js"' || fail "GET /: not the dashboard page"
[ "$(code "${URL}nothing")" = 404 ] || fail "GET /nothing: not 404"
#  DNS rebinding: a page of another domain that resolves to 127.0.0.1
port=${URL##*:}
[ "$(code "${URL}api/status" -H "Host: rebound.example:${port%/}")" = 403 ] \
    || fail "a request for another host name was not refused (403)"
[ "$(code "${URL}api/status" -H "Host: localhost:9999")" = 200 ] \
    || fail "a request for localhost (an ssh-forwarded port, say) was refused"
#  The event stream: its first event is a state with the 4 engines
event=$(curl -s -N --max-time 3 "${URL}api/events" | head -n 1)
python3 -c 'import json, sys; s = json.loads(sys.argv[1][len("data: "):]); assert len(s["status"]["engines"]) == 4' \
    "$event" 2>/dev/null || fail "the event stream's first event is not a state with 4 engines: ${event:0:200}"
stop_local_cluster || fail "the open cluster did not stop cleanly"
[ -e "$DIR/security/dashboard.url" ] && fail "the controller left security/dashboard.url behind"

#  2. Secure (CURVE): the token of security/dashboard.token
lp_tmpdir SDIR dashs
start_local_cluster "$SDIR" 4 --secure --dashboard 127.0.0.1:0 >/dev/null
URL=$(cat "$SDIR/security/dashboard.url" 2>/dev/null)
TOKEN_FILE=$SDIR/security/dashboard.token
say "secure dashboard at $URL"
[ "$(stat -c %a "$TOKEN_FILE" 2>/dev/null)" = 600 ] || fail "the token file is not mode 0600"
TOKEN=$(cat "$TOKEN_FILE" 2>/dev/null)
[ "${#TOKEN}" -ge 32 ] || fail "the token is too short ('$TOKEN')"
[ "$(code "${URL}api/status")" = 401 ] || fail "/api/status without the token: not 401"
[ "$(code "$URL")" = 401 ] || fail "/ without the token: not 401"
[ "$(code "${URL}api/events")" = 401 ] || fail "/api/events without the token: not 401"
[ "$(code "${URL}api/status" -H "Authorization: Bearer x$TOKEN")" = 401 ] \
    || fail "/api/status with a wrong token: not 401"
#  503 until the hub's first snapshot (within a second of the start)
wait_for 10 answers "${URL}api/status" -H "Authorization: Bearer $TOKEN"
[ "$(code "${URL}api/status" -H "Authorization: Bearer $TOKEN")" = 200 ] \
    || fail "/api/status with the token: not 200"
headers=$(curl -s -D - -o /dev/null --max-time 10 "${URL}?token=$TOKEN")
grep -q '^HTTP/1.1 200' <<< "$headers" || fail "/?token=TOKEN: not 200"
grep -qi "^Set-Cookie: lp_dashboard_token=$TOKEN;.*HttpOnly" <<< "$headers" \
    || fail "/?token=TOKEN did not set the cookie"
[ "$(code "${URL}api/status" -b "lp_dashboard_token=$TOKEN")" = 200 ] \
    || fail "/api/status with the cookie: not 200"
out=$("$BUILD/lpdashcheck" "$SDIR/security/lp-client.json" "$URL" "$TOKEN" 2>&1)
rc=$?
say "$out"
[ "$rc" -eq 0 ] || fail "/api/status and lp_client_queue_status disagree (secure dashboard)"
stop_local_cluster || fail "the secure cluster did not stop cleanly"
#  Again, the dashboard asked for by the profile's config file this time
echo 'dashboard = "127.0.0.1:0"' > "$SDIR/lpcontroller_config.lua"
start_local_cluster "$SDIR" 1 --secure >/dev/null
URL=$(cat "$SDIR/security/dashboard.url" 2>/dev/null)
[[ $URL == http://127.0.0.1:* ]] || fail "dashboard = ... in lpcontroller_config.lua: no dashboard"
[ "$(cat "$TOKEN_FILE" 2>/dev/null)" = "$TOKEN" ] || fail "the token changed across a restart"
wait_for 10 answers "${URL}api/status" -b "lp_dashboard_token=$TOKEN"
[ "$(code "${URL}api/status" -b "lp_dashboard_token=$TOKEN")" = 200 ] \
    || fail "the restarted dashboard did not answer 200 with the old token's cookie"
stop_local_cluster || fail "the restarted secure cluster did not stop cleanly"
if grep -l -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log >/dev/null 2>&1; then
    fail "sanitizer report in the cluster's logs ($DIR/log)"
    grep -h -A 20 -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log | head -n 60
fi
if grep -l -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$SDIR"/log/*.log >/dev/null 2>&1; then
    fail "sanitizer report in the cluster's logs ($SDIR/log)"
    grep -h -A 20 -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$SDIR"/log/*.log | head -n 60
fi
finish
