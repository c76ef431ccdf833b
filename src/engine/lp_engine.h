/*  =========================================================================
    lp_engine.h - the engine's Lua state

    One lua_State per engine process, used only by the main thread. Each
    request method runs the user's code in protected mode and returns the
    reply content map: {status = "ok", values = [...]} or {status = "error",
    ename, evalue, traceback}. lp_engine_interrupt is the one method another
    thread (the heart) may call.
    =========================================================================
*/
#ifndef LP_ENGINE_H_INCLUDED
#define LP_ENGINE_H_INCLUDED

#include "lp_prelude.h"

typedef struct _lp_engine_t lp_engine_t;

//  Called for every print / io.write, on the main thread, while Lua runs.
typedef void (lp_engine_output_fn) (void *arg, const char *text, size_t len);

//  memory_limit in bytes, 0 for none. NULL when the state cannot be made.
lp_engine_t *lp_engine_new (size_t memory_limit);
void        lp_engine_destroy (lp_engine_t **self_p);
//  Sets lp.id (kept across clear).
void        lp_engine_set_id (lp_engine_t *self, int id);
//  Sets lp.rank and lp.size (kept across clear): the engine's MPI rank
//  and world size, -1 for nil (not started by an MPI launcher; a rank
//  whose launcher gave no size).
void        lp_engine_set_rank (lp_engine_t *self, int rank, int size);
void        lp_engine_set_output (lp_engine_t *self, lp_engine_output_fn *fn, void *arg);

//  Requests. Each returns the reply content (caller destroys), NULL only
//  when the C heap is exhausted.
lp_value_t *lp_engine_execute (lp_engine_t *self, const char *code);
lp_value_t *lp_engine_apply (lp_engine_t *self, const char *fn, const lp_value_t *args);
//  star: each item is an array of the arguments of one call (a map over
//  several sequences); else each item is the one argument.
lp_value_t *lp_engine_map (lp_engine_t *self, const char *fn, const lp_value_t *items,
                           bool star);
lp_value_t *lp_engine_push (lp_engine_t *self, const lp_value_t *ns);
lp_value_t *lp_engine_pull (lp_engine_t *self, const lp_value_t *names);
lp_value_t *lp_engine_clear (lp_engine_t *self);

//  All the last request printed (NUL-terminated; valid until the next one):
//  its first bytes up to the cap, then, when more was printed, a line
//  "[output truncated: N bytes dropped]". Only the kept bytes are given
//  to the output fn, so what was streamed is a prefix of this text.
const char *lp_engine_stdout (lp_engine_t *self, size_t *len_p);
//  The cap on a request's captured output (default LP_ENGINE_STDOUT_MAX;
//  lpengine --stdout-max).
void        lp_engine_set_stdout_max (lp_engine_t *self, size_t bytes);
//  Empties that capture (for a request answered without running).
void        lp_engine_clear_stdout (lp_engine_t *self);

//  Any thread: interrupts the running request. Returns true when one was
//  running (it then ends with an Interrupted error).
bool        lp_engine_interrupt (lp_engine_t *self);

//  Main thread: the next request may run at most msec (0 = no limit); past
//  it, the request ends with a TimeLimit error and the engine stays usable.
void        lp_engine_set_time_limit (lp_engine_t *self, int64_t msec);
//  Seconds until the batch job this engine runs in ends: from
//  SLURM_JOB_END_TIME (set by Slurm 23.02 and later), else LP_WALLTIME_END
//  (epoch seconds, exported by the batch scripts of src/launchers), never
//  below 0. Returns 0 with *left set, -1 when neither is set (no limit
//  known). Reads the environment only: cheap enough for every request.
int         lp_engine_walltime_left (double *left);
//  Any thread (the heart polls it): stops the running request when its
//  time limit has passed. True when it did.
bool        lp_engine_check_deadline (lp_engine_t *self);
//  zclock_mono ms by which the running request must end, 0 = none.
int64_t     lp_engine_deadline (lp_engine_t *self);

//  Abort by msg_id (protocol.md, "Control channel"). The main thread
//  calls begin before serving a request: true when msg_id was marked
//  aborted (the mark is used up; answer Aborted, do not run it); else
//  msg_id is the running request until end, which counts it completed
//  (the last LP_ENGINE_DONE_IDS are remembered).
bool        lp_engine_begin_request (lp_engine_t *self, const char *msg_id);
void        lp_engine_end_request (lp_engine_t *self);
//  Any thread (the heart): marks msg_id aborted. 1 when marked (or
//  already), 0 when it runs now or was completed, -1 when the mark table
//  is full. Marks expire after LP_REPLAY_WINDOW_MSEC.
int         lp_engine_abort (lp_engine_t *self, const char *msg_id);

//  Any thread: ms since the running request was asked to stop (interrupt
//  or time limit) without stopping; 0 when none is pending.
int64_t     lp_engine_stuck_msec (lp_engine_t *self);

//  {status = "error", ename, evalue, traceback}; NULL when out of memory.
lp_value_t *lp_engine_error_content (const char *ename, const char *evalue,
                                     const char *traceback);

#endif
