#  tests/shell/lib/lua.sh - running the lua5.4 interpreter on the
#  luaparallel module, for the shell tests that do (sourced, not a test).
#  Needs BUILD and DIR (the test's temporary folder) and say ().

#  lua_setup: sets LUA (the interpreter) and PRELOAD (the ASan runtime a
#  sanitizer build's module needs loaded first in the uninstrumented
#  interpreter); ends the test when lua5.4 or the module is missing.
lua_setup() {
    LUA=$(command -v lua5.4) || { say "FAIL: lua5.4 not installed (Debian package lua5.4)"; exit 1; }
    [ -f "$BUILD/lua/luaparallel.so" ] || { say "FAIL: $BUILD/lua/luaparallel.so not built"; exit 1; }
    PRELOAD=""
    if grep -q '^LP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        PRELOAD=$(gcc -print-file-name=libasan.so)
    fi
}

#  run_lua CPATH SECONDS SCRIPT ARGS...: lua5.4 SCRIPT ARGS in $DIR with
#  LUA_CPATH=CPATH, for at most SECONDS; its status. With PRELOAD, leak
#  checking is off for lua5.4 itself, whose own allocations ASan cannot
#  account for.
run_lua() {
    local cpath=$1 seconds=$2
    shift 2
    if [ -n "$PRELOAD" ]; then
        (cd "$DIR" && LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 LUA_CPATH="$cpath" \
            timeout "$seconds" "$LUA" "$@")
    else
        (cd "$DIR" && LUA_CPATH="$cpath" timeout "$seconds" "$LUA" "$@")
    fi
}
