#!/usr/bin/env bash
#  link_deps.sh BUILD_DIR
#
#  Issue 10: the C client library does not depend on Lua; the programs
#  that hold a Lua state do. Checked on the built files with ldd and nm:
#    - libluaparallel.so: no liblua in its dependencies, no lua_* symbol
#      undefined in it (it holds no Lua code at all);
#    - lpengine and lpsh: liblua5.4 among their dependencies;
#    - the Lua module (lua/luaparallel.so): lua_* symbols left undefined,
#      to be taken from the interpreter that loads it (Debian's rule for
#      Lua C modules: a module linked to its own liblua would run two
#      copies of Lua in one process).
set -u
BUILD=${1:?usage: link_deps.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test link_deps
command -v ldd >/dev/null && command -v nm >/dev/null || skip "ldd or nm not installed"

lib=$BUILD/libluaparallel.so
[ -f "$lib" ] || fail "no $lib"
if ldd "$lib" | grep -qi 'liblua'; then
    fail "libluaparallel.so depends on Lua: $(ldd "$lib" | grep -i liblua)"
fi
if nm -D --undefined-only "$lib" | grep -q ' lua_\| luaL_'; then
    fail "libluaparallel.so refers to Lua symbols: $(nm -D --undefined-only "$lib" | grep -m3 ' lua')"
fi
for prog in lpengine lpsh; do
    if [ -x "$BUILD/$prog" ]; then
        ldd "$BUILD/$prog" | grep -q 'liblua5\.4' || fail "$prog does not link liblua5.4"
    else
        fail "no $BUILD/$prog"
    fi
done
mod=$BUILD/lua/luaparallel.so
if [ -f "$mod" ]; then
    nm -D --undefined-only "$mod" | grep -q ' lua_' \
        || fail "the Lua module uses no lua_* symbol from its host"
else
    fail "no $mod"
fi
say "libluaparallel.so: $(ldd "$lib" | wc -l) dependencies, none of them Lua"
finish
