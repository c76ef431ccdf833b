#!/usr/bin/env bash
#  conn_file_errors.sh BUILD_DIR
#
#  A bad connection file makes lpengine and client programs print ONE line
#  naming the file and the problem, and exit non-zero, promptly:
#  a missing file, an unreadable file, malformed JSON, JSON without "key".
#  Root reads mode 000 files: as root the unreadable case runs as user
#  nobody (setpriv); without setpriv it is left out, and the test says so.
set -u
BUILD=${1:?usage: conn_file_errors.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test conn_file_errors
lp_tmpdir TMP conn
LIMIT=30            # seconds a program may take to give up on a bad file

# check LABEL PROBLEM_REGEX FILE CMD...
check() {
    local label=$1 regex=$2 file=$3
    shift 3
    local out rc lines
    out=$(timeout "$LIMIT" "$@" 2>&1 </dev/null)
    rc=$?
    lines=$(printf '%s' "$out" | grep -c .)
    if [ "$rc" -eq 124 ]; then
        fail "$label: '$*' did not exit within $LIMIT s"
        return
    fi
    if [ "$rc" -eq 0 ]; then
        fail "$label: '$*' exited 0, expected non-zero (output: $out)"
    fi
    if [ "$lines" -ne 1 ]; then
        fail "$label: expected ONE line of output, got $lines:"
        printf '%s\n' "$out" | sed 's/^/    | /'
    fi
    if ! printf '%s' "$out" | grep -qF -- "$file"; then
        fail "$label: output does not name the file $file: $out"
    fi
    if ! printf '%s' "$out" | grep -qiE -- "$regex"; then
        fail "$label: output does not say the problem (/$regex/): $out"
    fi
    echo "ok   $label (exit $rc): $out"
}

cat > "$TMP/malformed.json" <<'EOF'
{ "version": "1.0", "kind": "engine", "key": "00112233
EOF
cat > "$TMP/nokey.json" <<'EOF'
{ "version": "1.0", "kind": "engine", "signature_scheme": "blake2b-256",
  "location": "127.0.0.1",
  "endpoints": { "registration": "tcp://127.0.0.1:1", "hb_ping": "tcp://127.0.0.1:2",
                 "hb_pong": "tcp://127.0.0.1:3", "mux": "tcp://127.0.0.1:4",
                 "control": "tcp://127.0.0.1:5", "iopub": "tcp://127.0.0.1:6",
                 "notification": "tcp://127.0.0.1:7" } }
EOF
cp "$TMP/nokey.json" "$TMP/unreadable.json"
chmod 000 "$TMP/unreadable.json"
# root: the unreadable case runs as nobody, who may enter $TMP
AS_NOBODY=""
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
    chmod 711 "$TMP"
fi

MISSING_RE='no such file|not found|does not exist|missing|cannot open|can.t open|cannot read'
UNREAD_RE='permission|denied|cannot read|unreadable|not readable'
MALFORMED_RE='json|parse|syntax|invalid|malformed|unexpected|premature'
NOKEY_RE='key'

run_cases() {   # PROGRAM_LABEL CMD_PREFIX... (the file is appended)
    local label=$1
    shift
    check "$label: missing file" "$MISSING_RE" "$TMP/missing.json" "$@" "$TMP/missing.json"
    if [ "$(id -u)" -ne 0 ]; then
        check "$label: unreadable file" "$UNREAD_RE" "$TMP/unreadable.json" "$@" "$TMP/unreadable.json"
    elif [ -n "$AS_NOBODY" ]; then
        check "$label: unreadable file (as nobody)" "$UNREAD_RE" "$TMP/unreadable.json" \
            $AS_NOBODY "$@" "$TMP/unreadable.json"
    else
        say "skip $label: unreadable file (root reads a mode 000 file, and there is no setpriv to run as nobody)"
    fi
    check "$label: malformed JSON" "$MALFORMED_RE" "$TMP/malformed.json" "$@" "$TMP/malformed.json"
    check "$label: JSON without key" "$NOKEY_RE" "$TMP/nokey.json" "$@" "$TMP/nokey.json"
}

if [ -x "$BUILD/lpengine" ]; then
    run_cases lpengine "$BUILD/lpengine" --file
else
    fail "$BUILD/lpengine not built"
fi
if [ -x "$BUILD/pi" ]; then
    run_cases "pi example" "$BUILD/pi"
else
    fail "$BUILD/pi (examples/pi.c) not built"
fi
if [ -x "$BUILD/lpcall" ]; then
    # lpcall prints "lpcall: <lp_last_error ()>": checks the library's message
    run_cases "client library (lpcall)" "$BUILD/lpcall"
fi

# a client file given where an engine file is expected (and vice versa) is
# caught too, or at least never hangs
cat > "$TMP/client-kind.json" <<'EOF'
{ "version": "1.0", "kind": "client", "signature_scheme": "blake2b-256",
  "key": "0000000000000000000000000000000000000000000000000000000000000000",
  "location": "127.0.0.1", "endpoints": { "registration": "tcp://127.0.0.1:1" } }
EOF
if [ -x "$BUILD/lpengine" ]; then
    LIMIT=15
    check "lpengine: client file instead of engine file" 'kind|client|engine|endpoint|hb_' \
        "$TMP/client-kind.json" "$BUILD/lpengine" --file "$TMP/client-kind.json"
fi

finish
