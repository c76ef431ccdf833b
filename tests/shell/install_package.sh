#!/usr/bin/env bash
#  install_package.sh BUILD_DIR
#
#  Issue 14: the installed tree works for a C program built elsewhere.
#  `cmake --install` into a temporary prefix, then the first example of
#  docs/api.md (cut out of the doc as it stands) is built as a user would:
#    - a CMake project with find_package (luaparallel 0.1) linking
#      luaparallel::luaparallel, and one linking luaparallel::luaparallel_static;
#    - cc with `pkg-config --cflags --libs luaparallel`, and statically with
#      `pkg-config --static --libs`;
#  and each program runs against a 4-engine cluster of the default profile
#  ($LP_HOME): with engine 2 broken (lp = {}), it prints the three good
#  values, the error of engine 2 on stderr, exits 1 and does not abort
#  (the readers assert on NULL: the example checks lp_result_error first);
#  with engine 2 mended, it prints four values and exits 0. Also: the
#  shared programs load the installed library; `pkg-config --cflags` is
#  the installed include folder alone (none of czmq's private include
#  paths); find_package (luaparallel 9) is refused by the version file.
set -u
BUILD=${1:?usage: install_package.sh BUILD_DIR}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test install_package
need_built lpcontroller lpengine lpsh
for tool in cmake cc pkg-config; do
    command -v "$tool" > /dev/null || { say "FAIL: $tool not installed"; exit 1; }
done
lp_tmpdir DIR inst
PREFIX=$DIR/inst
# A library built with the sanitizers (cluster.sh test's build-asan/) needs
# programs built with them too, as a user of such a build would do.
SAN=""
grep -q '^LP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null \
    && SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"

# --- install ------------------------------------------------------------------
timeout 120 cmake --install "$BUILD" --prefix "$PREFIX" > "$DIR/install.log" 2>&1 \
    || { tail -n 20 "$DIR/install.log"; say "FAIL: cmake --install"; exit 1; }
PCDIR=$(dirname "$(find "$PREFIX" -name luaparallel.pc | head -n 1)")
[ -f "$PCDIR/luaparallel.pc" ] || { say "FAIL: no luaparallel.pc installed"; exit 1; }
LIBDIR=$(dirname "$PCDIR")
[ -f "$(find "$PREFIX" -name luaparallelConfig.cmake | head -n 1)" ] || fail "no luaparallelConfig.cmake installed"
[ -f "$(find "$PREFIX" -name luaparallelConfigVersion.cmake | head -n 1)" ] || fail "no luaparallelConfigVersion.cmake installed"

# --- pkg-config --cflags: our include folder, nothing else --------------------
export PKG_CONFIG_PATH=$PCDIR
cflags=$(pkg-config --cflags luaparallel) || fail "pkg-config --cflags luaparallel failed"
# shellcheck disable=SC2086
set -- $cflags
if [ "$#" -ne 1 ] || [ "${1#-I}" = "$1" ]; then
    fail "pkg-config --cflags luaparallel is not one -I flag: '$cflags' (czmq's: '$(pkg-config --cflags libczmq)')"
elif [ "$(realpath "${1#-I}")" != "$(realpath "$PREFIX/include")" ]; then
    fail "pkg-config --cflags points at ${1#-I}, not $PREFIX/include"
fi
[ -f "$PREFIX/include/luaparallel.h" ] || fail "no $PREFIX/include/luaparallel.h"

# --- the example of docs/api.md -------------------------------------------------
mkdir -p "$DIR/user"
awk '/^```c$/ && !done { on = 1; next } on && /^```$/ { done = 1; on = 0 } on' \
    "$SRC/docs/api.md" > "$DIR/user/example.c"
grep -q 'lp_client_connect' "$DIR/user/example.c" \
    || { say "FAIL: no first C example found in docs/api.md"; exit 1; }
cat > "$DIR/user/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required (VERSION 3.25)
project (user C)
find_package (luaparallel 0.1 REQUIRED)
add_executable (example_cmake example.c)
target_link_libraries (example_cmake PRIVATE luaparallel::luaparallel)
add_executable (example_static example.c)
target_link_libraries (example_static PRIVATE luaparallel::luaparallel_static)
CMAKE
if timeout 120 cmake -S "$DIR/user" -B "$DIR/user/build" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_C_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" > "$DIR/user.log" 2>&1 \
   && timeout 120 cmake --build "$DIR/user/build" >> "$DIR/user.log" 2>&1; then
    :
else
    tail -n 30 "$DIR/user.log"; fail "the find_package (luaparallel) project did not build"
fi
# shellcheck disable=SC2086
timeout 120 cc -std=c11 -Wall -Wextra -Werror $SAN "$DIR/user/example.c" -o "$DIR/user/example_pc" \
    $(pkg-config --cflags --libs luaparallel) -Wl,-rpath,"$LIBDIR" 2> "$DIR/pc.log" \
    || { cat "$DIR/pc.log"; fail "cc with pkg-config --cflags --libs did not build the example"; }
static_libs=$(pkg-config --static --libs luaparallel | sed 's/-lluaparallel/-l:libluaparallel.a/')
# shellcheck disable=SC2086
timeout 120 cc -std=c11 $SAN "$DIR/user/example.c" -o "$DIR/user/example_pc_static" \
    $(pkg-config --cflags luaparallel) $static_libs 2> "$DIR/pcs.log" \
    || { cat "$DIR/pcs.log"; fail "cc with pkg-config --static --libs did not build the example"; }

# the version file refuses a version we are not
mkdir -p "$DIR/v9"
printf 'cmake_minimum_required (VERSION 3.25)\nproject (v9 C)\nfind_package (luaparallel 9 REQUIRED)\n' \
    > "$DIR/v9/CMakeLists.txt"
if timeout 120 cmake -S "$DIR/v9" -B "$DIR/v9/build" -DCMAKE_PREFIX_PATH="$PREFIX" > "$DIR/v9.log" 2>&1; then
    fail "find_package (luaparallel 9) was accepted by version $(grep -o 'PACKAGE_VERSION "[^"]*"' "$(find "$PREFIX" -name luaparallelConfigVersion.cmake)")"
fi

PROGRAMS=""
for p in "$DIR/user/build/example_cmake" "$DIR/user/build/example_static" \
         "$DIR/user/example_pc" "$DIR/user/example_pc_static"; do
    [ -x "$p" ] && PROGRAMS="$PROGRAMS $p"
done
for p in "$DIR/user/build/example_cmake" "$DIR/user/example_pc"; do
    [ -x "$p" ] || continue
    lib=$(ldd "$p" | awk '/libluaparallel/ { print $3 }')
    [ "$(realpath "$lib" 2>/dev/null)" = "$(realpath "$LIBDIR/libluaparallel.so.0" 2>/dev/null)" ] \
        || fail "$(basename "$p") loads libluaparallel from '$lib', not the installed $LIBDIR"
done
for p in "$DIR/user/build/example_static" "$DIR/user/example_pc_static"; do
    [ -x "$p" ] || continue
    ldd "$p" | grep -q libluaparallel && fail "$(basename "$p") is not linked statically"
done

# --- run them against the default profile's cluster -----------------------------
export LP_HOME=$DIR/home
start_local_cluster "$LP_HOME/profile_default" 4
FILE=$LP_HOME/profile_default/security/lp-client.json
"$BUILD/lpsh" --file "$FILE" --wait 4 -e '%px --targets 2 lp = {}' > "$DIR/break.log" 2>&1 \
    || { cat "$DIR/break.log"; fail "could not break engine 2"; }
for p in $PROGRAMS; do
    name=$(basename "$p")
    timeout 60 "$p" > "$DIR/$name.out" 2> "$DIR/$name.err"; rc=$?
    [ "$rc" -eq 1 ] || fail "$name with a failing engine exited $rc, expected 1 (134 is an abort): $(cat "$DIR/$name.err")"
    [ "$(cat "$DIR/$name.out")" = $'engine 0: 0\nengine 1: 10\nengine 3: 30' ] \
        || fail "$name with engine 2 failing printed: $(cat "$DIR/$name.out")"
    grep -q '^\[engine 2\] LuaError: ' "$DIR/$name.err" \
        || fail "$name did not report engine 2's error: $(cat "$DIR/$name.err")"
done
"$BUILD/lpsh" --file "$FILE" -e '%px --targets 2 lp = package.loaded.lp' > "$DIR/mend.log" 2>&1 \
    || { cat "$DIR/mend.log"; fail "could not mend engine 2"; }
for p in $PROGRAMS; do
    name=$(basename "$p")
    timeout 60 "$p" > "$DIR/$name.out" 2> "$DIR/$name.err"; rc=$?
    [ "$rc" -eq 0 ] || fail "$name exited $rc: $(cat "$DIR/$name.err")"
    [ "$(cat "$DIR/$name.out")" = $'engine 0: 0\nengine 1: 10\nengine 2: 20\nengine 3: 30' ] \
        || fail "$name printed: $(cat "$DIR/$name.out")"
done
say "built and ran:$(for p in $PROGRAMS; do printf ' %s' "$(basename "$p")"; done)"
[ "$(echo $PROGRAMS | wc -w)" -eq 4 ] || fail "only$(echo $PROGRAMS | wc -w) of 4 programs built"

stop_local_cluster || fail "the cluster did not stop cleanly"
finish
