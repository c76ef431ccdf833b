/*  =========================================================================
    lp_common.h - every class of src/common, for a file that uses most of
    them (a source file normally includes only the headers it uses)

    src/common is shared by controller, engine and client; it knows no
    process. One header per class:
      lp_value    value trees (public API in luaparallel.h; lp_value.h
                  holds the library's private calls)
      lp_codec    value <-> msgpack, large payloads as separate frames
      lp_msg      one protocol message (header, parent, metadata, content)
      lp_wire     signing, verification, re-signing, drop accounting
      lp_guard    replay guard (by time for the controller, by count else)
      lp_proto    message types, header fields, frame positions
      lp_conn     connection files (JSON through jansson)
      lp_util     ids, UTF-8 check, clocks, profile paths
    lp_prelude.h (czmq, assert, luaparallel.h, lp_defaults.h) comes first
    in each. Lua <-> value is lp_luavalue in src/lua, outside common, so
    that the client library does not link liblua. Every class has a
    self-test lp_<class>_test (bool verbose), run by lp_selftest.
    =========================================================================
*/
#ifndef LP_COMMON_H_INCLUDED
#define LP_COMMON_H_INCLUDED

#include "lp_prelude.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_value.h"
#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_guard.h"
#include "lp_wire.h"
#include "lp_conn.h"

#endif
