#!/usr/bin/env bash
#  store_faults.sh BUILD_DIR
#
#  Issue 11, the task store under faults, as a user meets them:
#   1. a store file that is not a database: `./cluster.sh start` fails at
#      once with the file's path and SQLite's reason (no crash, no cluster);
#   2. a db folder the controller cannot write: the same, with the path;
#   3. kill -9 of the controller while tasks are being written: the file
#      passes `pragma integrity_check`, keeps its rows (WAL), and the next
#      start opens it and adds to it;
#   4. --no-db: no file, and a fetch says the store is off.
#  Only processes this test started are signalled, by pid.
set -u
BUILD=${1:?usage: store_faults.sh BUILD_DIR}
CLIENT_PID=""
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test store_faults
cli_profile store "storetest$$"
lua_setup
#  An immutable folder must not outlive the test (rm would fail)
test_cleanup() { [ -d "$DIR/db" ] && chattr -i "$DIR/db" 2>/dev/null; true; }
command -v sqlite3 >/dev/null || { say "FAIL: sqlite3 not installed (Debian package sqlite3)"; exit 1; }
CPATH="$BUILD/lua/?.so;;"
DB=$DIR/db/tasks.sqlite3

#  expect_start_error WHAT TEXT...: ./cluster.sh start must fail and say
#  each TEXT
expect_start_error() {
    local what=$1 out rc t
    shift
    out=$(timeout 60 "$CLI" start -n 1 --profile "$NAME" --no-build 2>&1)
    rc=$?
    echo "$out" | sed 's/^/    /'
    if [ "$rc" -eq 0 ]; then
        fail "$what: start succeeded"
        "$CLI" stop --profile "$NAME" >/dev/null 2>&1
        return
    fi
    [ "$rc" -ge 124 ] && fail "$what: start ended with status $rc (timeout or signal)"
    for t in "$@"; do
        case "$out" in
            *"$t"*) ;;
            *) fail "$what: the error does not say '$t'" ;;
        esac
    done
    [ -e "$DIR/pid/lpcontroller.pid" ] && fail "$what: a pid file was left"
    for p in $(strays "$LP_HOME"); do
        alive "$p" && fail "$what: pid $p still running"
    done
}

# 1. Not a database
mkdir -p "$DIR/db"
head -c 8192 /dev/urandom > "$DB"
expect_start_error "corrupt store" "$DB" "not a database"
rm -f "$DB" "$DB-wal" "$DB-shm"

# 2. A db folder that cannot be written
if [ "$(id -u)" -ne 0 ]; then
    chmod 500 "$DIR/db"
    expect_start_error "unwritable db folder" "$DB" "unable to open"
    chmod 700 "$DIR/db"
elif chattr +i "$DIR/db" 2>/dev/null; then
    expect_start_error "immutable db folder (root)" "$DB" "unable to open"
    chattr -i "$DIR/db"
else
    #  root without chattr: a file where the folder should be
    rmdir "$DIR/db"
    echo "not a folder" > "$DIR/db"
    expect_start_error "db is not a folder (root)" "$DIR/db" "Not a directory"
    rm -f "$DIR/db"
fi

# 3. kill -9 while writing
if ! "$CLI" start -n 2 --profile "$NAME" --no-build; then
    fail "start on a fresh profile failed"; show_logs; exit 1
fi
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
cat > "$LP_HOME/flood.lua" <<'EOF'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
assert (rc:wait_for_engines (2, 30000))
local lb = rc:balanced ()
lb.block = false
local batch = {}
for i = 1, 1000000 do
    local ok = pcall (function ()
        batch [#batch + 1] = lb:execute ("return " .. i)
        if #batch >= 200 then
            for _, r in ipairs (batch) do r:wait (30000) end
            batch = {}
        end
    end)
    if not ok then break end
end
EOF
(cd "$LP_HOME" && LUA_CPATH="$CPATH" exec "$LUA" flood.lua "$DIR/security/lp-client.json") \
    > "$LP_HOME/flood.out" 2>&1 &

CLIENT_PID=$!
lp_track "$CLIENT_PID"
count() { sqlite3 "$DB" "select count(*) from requests" 2>/dev/null || echo -1; }
many() { [ "$(count)" -ge 3000 ]; }
wait_for 60 many || fail "fewer than 3000 rows after 60 s of tasks ($(count)): $(cat "$LP_HOME/flood.out")"
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 10 || fail "controller survives SIGKILL"
BEFORE=$(count)
say "controller killed with $BEFORE rows written"
kill -9 "$CLIENT_PID" 2>/dev/null
wait "$CLIENT_PID" 2>/dev/null
CHECK=$(sqlite3 "$DB" "pragma integrity_check" 2>&1)
[ "$CHECK" = ok ] || fail "integrity_check after kill -9: $CHECK"
[ "$BEFORE" -ge 3000 ] || fail "only $BEFORE rows after kill -9"
OK_ROWS=$(sqlite3 "$DB" "select count(*) from requests where status = 'ok'")
[ "$OK_ROWS" -ge 1 ] || fail "no completed row after kill -9"
"$CLI" stop --profile "$NAME" >/dev/null 2>&1
for p in $ENGINE_PIDS; do wait_gone "$p" 10 || fail "engine $p left after stop"; done
if ! "$CLI" start -n 1 --profile "$NAME" --no-build; then
    fail "start after kill -9 failed (the store does not reopen)"; show_logs
else
    CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
    cat > "$LP_HOME/one.lua" <<'EOF'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
assert (rc:wait_for_engines (1, 30000))
local r = rc:balanced ():execute ("return 41 + 1")
assert (r == 42, "value " .. tostring (r))
local again = rc:fetch (arg [2])
assert (again:wait (30000))
print ("fetched after restart", again:state (1), again:get ())
EOF
    OLD=$(sqlite3 "$DB" "select msg_id from requests where status = 'ok' limit 1")
    if ! OUT=$(cd "$LP_HOME" && LUA_CPATH="$CPATH" timeout 60 "$LUA" one.lua \
               "$DIR/security/lp-client.json" "$OLD" 2>&1); then
        fail "a task after the restart: $OUT"
    fi
    echo "    $OUT"
    grown() { [ "$(count)" -gt "$BEFORE" ]; }
    wait_for 10 grown || fail "rows after restart: $(count) (before: $BEFORE)"
    AFTER=$(count)
    say "restart: $AFTER rows ($BEFORE before)"
    #  The Lua module's history, resubmit, msg_ids, purge; lpsh's magics
    VALUE=$(sqlite3 "$DB" "select code from requests where msg_id = '$OLD'")
    VALUE=${VALUE#return }
    cat > "$LP_HOME/more.lua" <<'EOF'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
local old, value = arg [2], tonumber (arg [3])
local h = rc:history {status = "ok", limit = 5}
assert (#h == 5 and h [1].msg_id and h [1].status == "ok", "history: " .. #h)
local again = rc:resubmit (old)
assert (again:get () == value, "resubmit: " .. tostring (again:get ()))
local ids = again:msg_ids ()
assert (#ids == 1 and ids [1] ~= old, "msg_ids")
assert (rc:fetch (ids [1]):get () == value, "fetch of the resubmitted id")
assert (rc:purge ("2000-01-01T00:00:00Z") == 0, "purge before 2000")
print ("history, resubmit, msg_ids, purge: ok")
EOF
    if ! OUT=$(cd "$LP_HOME" && LUA_CPATH="$CPATH" timeout 60 "$LUA" more.lua \
               "$DIR/security/lp-client.json" "$OLD" "$VALUE" 2>&1); then
        fail "Lua history/resubmit/purge: $OUT"
    fi
    echo "    $OUT"
    OUT=$(timeout 60 "$BUILD/lpsh" --profile-dir "$DIR" --bail -e '%history 3' \
          -e "%fetch $OLD" 2>&1)
    echo "$OUT" | sed 's/^/    /'
    case "$OUT" in
        *"3 records"*) ;;
        *) fail "lpsh %history 3 does not list 3 records" ;;
    esac
    case "$OUT" in
        *"]: $VALUE"*) ;;
        *) fail "lpsh %fetch $OLD does not show its value $VALUE" ;;
    esac
    "$CLI" stop --profile "$NAME" >/dev/null 2>&1
fi

# 4. --no-db
rm -rf "$DIR/db"
if ! "$CLI" start -n 1 --no-db --profile "$NAME" --no-build; then
    fail "start --no-db failed"; show_logs
else
    CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
    cat > "$LP_HOME/nodb.lua" <<'EOF'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
assert (rc:wait_for_engines (1, 30000))
assert (rc:balanced ():execute ("return 1") == 1)
local ok, err = pcall (rc.fetch, rc, "any")
assert (not ok and tostring (err):find ("task store is off", 1, true), tostring (err))
print ("fetch without a store:", err)
EOF
    if ! OUT=$(cd "$LP_HOME" && LUA_CPATH="$CPATH" timeout 60 "$LUA" nodb.lua \
               "$DIR/security/lp-client.json" 2>&1); then
        fail "--no-db: $OUT"
    fi
    echo "    $OUT"
    [ -e "$DB" ] && fail "--no-db: $DB exists"
    "$CLI" stop --profile "$NAME" >/dev/null 2>&1
fi
CTRL_PID=""
ENGINE_PIDS=""
finish
