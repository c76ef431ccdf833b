/*  =========================================================================
    lp_guard - replay guard: msg_ids seen, bounded by time or by count

    docs/protocol.md, "Replays". Thread-safe: the
    controller creates ONE, lp_guard_new (lp_guard_window_default (),
    LP_REPLAY_MAX_IDS), and sets it on the wire of every actor
    (lp_wire_set_guard), so a msg_id seen on any channel is a replay. It
    must outlive those wires. Engines and clients keep their wire's own
    guard (by count, LP_REPLAY_WINDOW ids, no date check).

    Self-test: lp_guard_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_GUARD_H_INCLUDED
#define LP_GUARD_H_INCLUDED

#include "lp_prelude.h"

typedef struct _lp_guard_t lp_guard_t;

//  window_msec > 0: by time -- a header date more than window_msec in the
//  past or the future (or missing) is refused, ids are remembered until
//  their date + window, and past max_ids ids new ones are refused (and
//  counted). window_msec == 0: by count -- the last max_ids ids, no date
//  check. NULL when max_ids is 0 or out of memory.
lp_guard_t *lp_guard_new (int64_t window_msec, size_t max_ids);
void        lp_guard_destroy (lp_guard_t **self_p);
//  $LP_REPLAY_WINDOW_MSEC when a positive integer, else
//  LP_REPLAY_WINDOW_MSEC (lpcontroller --replay-window sets the variable).
int64_t     lp_guard_window_default (void);
//  Atomically checks and remembers msg_id (date: the header's, may be
//  NULL). 0 when admitted; when refused, a negative lp_guard_refusal_t
//  and reason says why ("replayed msg_id ...", "date ... older than the
//  replay window", "... in the future", "header has no valid date",
//  "replay guard full").
typedef enum {
    LP_GUARD_REPLAY = -1,               //  msg_id seen before
    LP_GUARD_DATE = -2,                 //  date missing or outside the window
    LP_GUARD_FULL = -3                  //  hard cap reached (or out of memory)
} lp_guard_refusal_t;
int         lp_guard_admit (lp_guard_t *self, const char *msg_id, const char *date,
                            char *reason, size_t reasonlen);
//  Forgets an admitted id (its message was then found malformed).
void        lp_guard_forget (lp_guard_t *self, const char *msg_id);
size_t      lp_guard_size (lp_guard_t *self);           //  ids remembered
uint64_t    lp_guard_refused (lp_guard_t *self);        //  refused so far
uint64_t    lp_guard_refused_full (lp_guard_t *self);   //  ... because full
int64_t     lp_guard_window_msec (lp_guard_t *self);    //  0: by count
void        lp_guard_test (bool verbose);

#endif
