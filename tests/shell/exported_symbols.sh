#!/usr/bin/env bash
#  exported_symbols.sh BUILD_DIR
#
#  Issue 14: libluaparallel.so exports the documented API and nothing
#  else. With hidden visibility, only what include/luaparallel.h declares
#  with LP_EXPORT is exported; this checks, on the built library, that
#    - every dynamic symbol it defines (nm -D --defined-only) is a function
#      that include/luaparallel.h declares with LP_EXPORT, and is named in
#      docs/api.md (as a word: a signature, a call or a list of readers);
#    - every LP_EXPORT function of the header is exported.
#  Starts no process: label unit.
set -u
BUILD=${1:?usage: exported_symbols.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test exported_symbols
command -v nm >/dev/null || skip "nm not installed"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lib=$BUILD/libluaparallel.so
header=$SRC/include/luaparallel.h
doc=$SRC/docs/api.md
for f in "$lib" "$header" "$doc"; do
    [ -f "$f" ] || { fail "no $f"; finish; }
done
lp_tmpdir DIR syms

#  Defined dynamic symbols, without the linker's own (_init, _fini, ...)
nm -D --defined-only "$lib" | awk '{ print $NF }' | grep -v '^_' | sort -u > "$DIR/exported"
#  The function name of each LP_EXPORT declaration (which may span lines:
#  the name is the identifier before the first parenthesis); comments and
#  preprocessor lines (the macro's own definition) left out
sed -e 's://.*$::' -e '/^[[:space:]]*#/d' "$header" | tr '\n' ' ' | grep -oE 'LP_EXPORT[^;(]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\(' \
    | sed -E 's/[[:space:]]*\($//; s/.*[^A-Za-z0-9_]//' | sort -u > "$DIR/declared"

[ -s "$DIR/exported" ] || fail "nm lists no symbol of $lib"
[ -s "$DIR/declared" ] || fail "no LP_EXPORT declaration found in $header"
for name in $(comm -23 "$DIR/exported" "$DIR/declared"); do
    fail "exported but not declared with LP_EXPORT in luaparallel.h: $name"
done
for name in $(comm -13 "$DIR/exported" "$DIR/declared"); do
    fail "declared with LP_EXPORT but not exported: $name"
done
undocumented=0
while read -r name; do
    if ! grep -qw -- "$name" "$doc"; then
        fail "exported but not in docs/api.md: $name"
        undocumented=$((undocumented + 1))
    fi
done < "$DIR/exported"
say "$(wc -l < "$DIR/exported") exported, $(wc -l < "$DIR/declared") declared with LP_EXPORT, $undocumented undocumented"
finish
