/*  =========================================================================
    lp_policy.h - how the task scheduler decides: schemes and dependencies

    The pure part of the load-balanced scheduler: no sockets, no records,
    no actor, nothing allocated. lp_scheduler.c keeps the sockets and the
    task records; it describes its engines and a task's constraints with
    the plain values below and asks this module:

      - which engine takes the task (lp_policy_pick): the engines that are
        registered, below hwm, among the task's targets and on its follow
        engine are eligible; the one that just failed the task is avoided
        when there is another; the scheme chooses among the rest;
      - whether the task may start (lp_policy_deps): given the states of
        its after / follow dependencies (ready, waiting, or never).

    A scheme is one choose function and one line in the scheme table of
    lp_policy.c (docs/scheduling.md, "Adding a scheme"); lp_policy_test
    (lp_selftest --test policy) checks every scheme in the table on
    synthetic engine tables.
    =========================================================================
*/
#ifndef LP_POLICY_H_INCLUDED
#define LP_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  One engine, as the scheduler sees it when it places a task.
typedef struct {
    int id;                             //  engine id
    bool active;                        //  registered: may be sent to
    size_t load;                        //  tasks sent to it, not yet answered
    uint64_t last_used;                 //  stamp of its last assignment
                                        //  (smaller = longer ago; 0 = never)
} lp_policy_engine_t;

//  Where one task may go.
typedef struct {
    const int64_t *targets;             //  allowed engine ids, sorted
                                        //  ascending; NULL = any engine
    size_t ntargets;                    //  ids in targets
    int follow;                         //  the engine its follow dependencies
                                        //  ran on (lp_policy_deps), -1 = any
    int avoid;                          //  engine that just failed it, -1 =
                                        //  none (avoided when another is eligible)
} lp_policy_place_t;

//  Randomness for the random schemes: 32 random bits per call. NULL in
//  lp_policy_t means libsodium's randombytes; tests script their own.
typedef uint32_t (lp_policy_random_fn) (void *arg);

typedef struct {
    lp_policy_random_fn *random;        //  NULL = libsodium
    void *arg;                          //  passed to random
} lp_policy_rng_t;

//  A scheme: chooses one of count >= 1 eligible engines and returns its
//  index in engines (the order of engines carries no meaning the scheme
//  may rely on).
typedef size_t (lp_policy_choose_fn) (const lp_policy_engine_t *engines, size_t count,
                                      const lp_policy_rng_t *rng);

//  The scheduler's settings.
typedef struct {
    int scheme;                         //  index in the scheme table
    int hwm;                            //  most tasks outstanding on one
                                        //  engine, 0 = no limit
    lp_policy_rng_t rng;                //  for the random schemes
} lp_policy_t;

//  ---------------------------------------------------------------------
//  Schemes by name. The table's first entry (0) is the default.

//  Index of the scheme called name, -1 when there is none.
int          lp_policy_scheme (const char *name);
//  Name of scheme index, "?" when out of range.
const char  *lp_policy_scheme_name (int scheme);
//  Schemes in the table (they are 0 .. count - 1).
int          lp_policy_scheme_count (void);

//  ---------------------------------------------------------------------
//  Placing a task

//  Sorts a task's targets (folded: each id once) into the order
//  lp_policy_place_t wants.
void         lp_policy_sort_targets (int64_t *targets, size_t count);
//  True when an engine with load outstanding tasks may take one more.
bool         lp_policy_has_room (const lp_policy_t *self, size_t load);
//  True when engine may take a task placed by place.
bool         lp_policy_eligible (const lp_policy_t *self, const lp_policy_engine_t *engine,
                                 const lp_policy_place_t *place);
//  The engine that takes a task placed by place: the id of one of
//  engines (count of them, any order; inactive ones allowed), or -1 when
//  none is eligible (the task waits). engines is reordered (it is the
//  scratch for the eligible ones).
int          lp_policy_pick (const lp_policy_t *self, lp_policy_engine_t *engines, size_t count,
                             const lp_policy_place_t *place);

//  Helpers for choose functions.
//  Uniform integer in [0, upper), upper >= 1.
uint32_t     lp_policy_uniform (const lp_policy_rng_t *rng, uint32_t upper);
//  Uniform real in [0, 1).
double       lp_policy_unit (const lp_policy_rng_t *rng);
//  True when a is the better of two by load, then by lru order.
bool         lp_policy_less_loaded (const lp_policy_engine_t *a, const lp_policy_engine_t *b);

//  ---------------------------------------------------------------------
//  Dependencies (after / follow)

typedef enum {
    LP_DEPS_MET,                        //  may start now
    LP_DEPS_WAIT,                       //  some dependency has not finished
    LP_DEPS_IMPOSSIBLE                  //  can never be met: fail the task
} lp_deps_t;

//  What the scheduler knows of one dependency (a task's msg_id).
typedef enum {
    LP_DEP_UNKNOWN,                     //  never seen, or forgotten
    LP_DEP_PENDING,                     //  received, not finished
    LP_DEP_SUCCEEDED,                   //  finished with success
    LP_DEP_FAILED                       //  finished with an error
} lp_dep_state_t;

typedef struct {
    lp_dep_state_t state;               //  see above
    int engine;                         //  where it ran, when finished
} lp_dep_t;

//  A task's dependency flags, as its header gave them.
typedef struct {
    const char *const *after;           //  msg_ids that must finish first
    size_t nafter;
    const char *const *follow;          //  msg_ids whose engine it must run on
    size_t nfollow;
    bool success_ok;                    //  a dependency's success counts
    bool failure_ok;                    //  a dependency's failure counts
} lp_policy_deps_t;

//  The state of dependency msg_id (a finished outcome wins over pending).
typedef lp_dep_t (lp_policy_dep_fn) (void *arg, const char *msg_id);
//  True when engine is registered.
typedef bool (lp_policy_alive_fn) (void *arg, int engine);

//  Whether a task with deps may start. after is checked before follow, in
//  order; the first dependency that can never be met decides, with why
//  filled ("depends on task X, which is unknown here", ...). *follow gets
//  the engine the follow dependencies ran on (-1 when none) when MET.
lp_deps_t    lp_policy_deps (const lp_policy_deps_t *deps, lp_policy_dep_fn *dep,
                             lp_policy_alive_fn *alive, void *arg, int *follow,
                             char *why, size_t whylen);

//  Self-test: every scheme on synthetic engine tables, eligibility, and
//  dependency decisions; no sockets.
void         lp_policy_test (bool verbose);

#endif
