/*  =========================================================================
    lp_util - ids, UTF-8 check, clocks, profile paths, hex encoding, THP advice

    Self-test: lp_util_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_UTIL_H_INCLUDED
#define LP_UTIL_H_INCLUDED

#include "lp_prelude.h"

#define LP_ID_CHARS 32                  //  hex chars of a random id
//  Fills out with 32 random hex chars and a NUL (libsodium randombytes).
void    lp_util_random_id (char out[LP_ID_CHARS + 1]);
//  True when s (len bytes) is a Lua name and not a keyword.
bool    lp_util_lua_name (const char *s, size_t len);
//  Transparent huge pages for a large block about to be filled (advice).
void    lp_util_advise_huge (void *ptr, size_t size);
bool    lp_util_utf8_valid (const char *s, size_t len);
//  ISO 8601 UTC with microseconds: "2026-11-29T06:27:42.123456Z".
void    lp_util_iso_now (char out[32]);
int64_t lp_util_wall_usec (void);       //  microseconds since the epoch
//  Parses such a date ("Z" or "+00:00", 0..9 fraction digits) into
//  microseconds since the epoch. 0, or -1 when malformed.
int     lp_util_iso_parse (const char *date, int64_t *usec_p);
//  Profile folder: $LP_HOME/profile_<name>, else ~/.luaparallel/profile_<name>.
//  Returns 0, or -1 when it does not fit.
int     lp_util_profile_dir (const char *profile, char *out, size_t size);
//  Hex encode: 2 * len lowercase hex chars and a NUL into out.
void    lp_util_hex_encode (const uint8_t *data, size_t len, char *out);
void    lp_util_test (bool verbose);

#endif
