/*  =========================================================================
    lp_prelude.h - what every luaparallel source file includes first

    czmq (sockets, frames, containers, zsys_* logging), assertions kept in
    release builds too (as czmq does: they document contracts), the public
    API types (include/luaparallel.h) and the tunables (lp_defaults.h).
    Each class header includes this; a .c file includes the class headers
    it uses.
    =========================================================================
*/
#ifndef LP_PRELUDE_H_INCLUDED
#define LP_PRELUDE_H_INCLUDED

#undef NDEBUG
#include <assert.h>
#include <czmq.h>
#include "luaparallel.h"
#include "lp_defaults.h"

//  A const pointer handed to an API that takes a plain one for data it
//  does not change (zmq_msg_init_data, a value taken through a const
//  accessor by its owner): one visible, greppable cast.
#define LP_UNCONST(type, pointer)   ((type) (uintptr_t) (pointer))

#endif
