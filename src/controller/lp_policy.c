/*  =========================================================================
    lp_policy - how the task scheduler decides (see lp_policy.h)

    The schemes (docs/scheduling.md, "Choosing the scheme"):

        leastload   fewest outstanding tasks; ties: least recently used
        lru         least recently used, whatever its load
        plainrandom one uniformly at random
        weighted    two picks with probability proportional to
                    1 / (1 + load), then the less loaded of the two
        twobin      two uniform picks, then the less loaded of the two
                    (ties: least recently used)

    Every scheme sees only the eligible engines (registered, below hwm,
    among the targets, on the follow engine, and not the engine that just
    failed the task when another is eligible) and must return one of them.
    To add one: a choose function below and a line in s_schemes; the
    self-test runs every entry of the table through its contract checks.
    =========================================================================
*/

#include "lp_policy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>

//  --------------------------------------------------------------------
//  Helpers for schemes

uint32_t
lp_policy_uniform (const lp_policy_rng_t *rng, uint32_t upper)
{
    assert (upper >= 1);
    if (!rng || !rng->random)
        return randombytes_uniform (upper);
    //  Rejection sampling: no bias toward small values.
    uint32_t limit = (uint32_t) (((uint64_t) 1 << 32) - (((uint64_t) 1 << 32) % upper));
    uint32_t value;
    do
        value = rng->random (rng->arg);
    while (limit && value >= limit);
    return value % upper;
}

double
lp_policy_unit (const lp_policy_rng_t *rng)
{
    uint32_t bits = rng && rng->random? rng->random (rng->arg): randombytes_random ();
    return (double) bits / 4294967296.0;
}

bool
lp_policy_less_loaded (const lp_policy_engine_t *a, const lp_policy_engine_t *b)
{
    return a->load < b->load
        || (a->load == b->load && a->last_used < b->last_used);
}

//  --------------------------------------------------------------------
//  The schemes

static size_t
s_leastload (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    (void) rng;
    size_t choice = 0;
    for (size_t i = 1; i < count; i++)
        if (lp_policy_less_loaded (&engines [i], &engines [choice]))
            choice = i;
    return choice;
}

static size_t
s_lru (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    (void) rng;
    size_t choice = 0;
    for (size_t i = 1; i < count; i++)
        if (engines [i].last_used < engines [choice].last_used)
            choice = i;
    return choice;
}

static size_t
s_plainrandom (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    (void) engines;
    return lp_policy_uniform (rng, (uint32_t) count);
}

static size_t
s_twobin (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    size_t a = lp_policy_uniform (rng, (uint32_t) count);
    size_t b = lp_policy_uniform (rng, (uint32_t) count);
    return lp_policy_less_loaded (&engines [a], &engines [b])? a: b;
}

//  One pick with probability proportional to 1 / (1 + load).
static size_t
s_weighted_pick (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    double total = 0;
    for (size_t i = 0; i < count; i++)
        total += 1.0 / (1.0 + (double) engines [i].load);
    double point = total * lp_policy_unit (rng);
    for (size_t i = 0; i < count; i++) {
        point -= 1.0 / (1.0 + (double) engines [i].load);
        if (point < 0)
            return i;
    }
    return count - 1;
}

static size_t
s_weighted (const lp_policy_engine_t *engines, size_t count, const lp_policy_rng_t *rng)
{
    size_t a = s_weighted_pick (engines, count, rng);
    size_t b = s_weighted_pick (engines, count, rng);
    return lp_policy_less_loaded (&engines [a], &engines [b])? a: b;
}

//  The scheme table: name -> choose function. The first is the default.
static const struct {
    const char *name;                   //  as given to --scheduler
    lp_policy_choose_fn *choose;        //  picks among eligible engines
} s_schemes [] = {
    { "leastload",   s_leastload },
    { "lru",         s_lru },
    { "plainrandom", s_plainrandom },
    { "weighted",    s_weighted },
    { "twobin",      s_twobin },
};

#define S_SCHEMES ((int) (sizeof s_schemes / sizeof s_schemes [0]))

int
lp_policy_scheme (const char *name)
{
    for (int i = 0; name && i < S_SCHEMES; i++)
        if (strcmp (name, s_schemes [i].name) == 0)
            return i;
    return -1;
}

const char *
lp_policy_scheme_name (int scheme)
{
    return scheme >= 0 && scheme < S_SCHEMES? s_schemes [scheme].name: "?";
}

int
lp_policy_scheme_count (void)
{
    return S_SCHEMES;
}

//  --------------------------------------------------------------------
//  Placing a task

static int
s_compare_ids (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

void
lp_policy_sort_targets (int64_t *targets, size_t count)
{
    qsort (targets, count, sizeof (int64_t), s_compare_ids);
}

bool
lp_policy_has_room (const lp_policy_t *self, size_t load)
{
    return self->hwm <= 0 || load < (size_t) self->hwm;
}

bool
lp_policy_eligible (const lp_policy_t *self, const lp_policy_engine_t *engine,
                    const lp_policy_place_t *place)
{
    if (!engine->active || !lp_policy_has_room (self, engine->load))
        return false;
    if (place->follow >= 0 && engine->id != place->follow)
        return false;
    if (place->targets) {
        int64_t id = engine->id;
        if (!bsearch (&id, place->targets, place->ntargets, sizeof (int64_t), s_compare_ids))
            return false;
    }
    return true;
}

int
lp_policy_pick (const lp_policy_t *self, lp_policy_engine_t *engines, size_t count,
                const lp_policy_place_t *place)
{
    assert (self->scheme >= 0 && self->scheme < S_SCHEMES);
    size_t eligible = 0;
    for (size_t i = 0; i < count; i++)
        if (lp_policy_eligible (self, &engines [i], place))
            engines [eligible++] = engines [i];
    //  Avoid the engine that just failed this task, when there is another.
    if (eligible > 1 && place->avoid >= 0)
        for (size_t i = 0; i < eligible; i++)
            if (engines [i].id == place->avoid) {
                engines [i] = engines [--eligible];
                break;
            }
    if (eligible == 0)
        return -1;
    size_t choice = s_schemes [self->scheme].choose (engines, eligible, &self->rng);
    assert (choice < eligible);
    return engines [choice].id;
}

//  --------------------------------------------------------------------
//  Dependencies

lp_deps_t
lp_policy_deps (const lp_policy_deps_t *deps, lp_policy_dep_fn *dep,
                lp_policy_alive_fn *alive, void *arg, int *follow,
                char *why, size_t whylen)
{
    *follow = -1;
    bool wait = false;
    for (int list = 0; list < 2; list++) {
        const char *const *ids = list? deps->follow: deps->after;
        size_t count = list? deps->nfollow: deps->nafter;
        for (size_t i = 0; i < count; i++) {
            lp_dep_t state = dep (arg, ids [i]);
            if (state.state == LP_DEP_PENDING) {
                wait = true;
                continue;
            }
            if (state.state == LP_DEP_UNKNOWN) {
                snprintf (why, whylen, "depends on task %s, which is unknown here", ids [i]);
                return LP_DEPS_IMPOSSIBLE;
            }
            bool ok = state.state == LP_DEP_SUCCEEDED;
            if (!((ok && deps->success_ok) || (!ok && deps->failure_ok))) {
                snprintf (why, whylen, "depends on task %s, which %s", ids [i],
                          ok? "succeeded (failure=true, success=false required)"
                            : "failed (success required)");
                return LP_DEPS_IMPOSSIBLE;
            }
            if (list) {
                if (*follow >= 0 && *follow != state.engine) {
                    snprintf (why, whylen, "follows tasks that ran on engines %d and %d",
                              *follow, state.engine);
                    return LP_DEPS_IMPOSSIBLE;
                }
                *follow = state.engine;
            }
        }
    }
    if (wait)
        return LP_DEPS_WAIT;
    if (*follow >= 0 && !alive (arg, *follow)) {
        snprintf (why, whylen, "follows tasks that ran on engine %d, which is gone", *follow);
        return LP_DEPS_IMPOSSIBLE;
    }
    return LP_DEPS_MET;
}

//  --------------------------------------------------------------------
//  Self-test

//  Scripted randomness: returns values [0..n) in turn, then repeats.
typedef struct {
    const uint32_t *values;
    size_t count;
    size_t next;
} s_script_t;

static uint32_t
s_script_random (void *arg)
{
    s_script_t *script = (s_script_t *) arg;
    uint32_t value = script->values [script->next % script->count];
    script->next++;
    return value;
}

//  A tiny world of finished and pending tasks for lp_policy_deps.
typedef struct {
    const char *id;
    lp_dep_state_t state;
    int engine;
} s_known_t;

typedef struct {
    const s_known_t *known;
    bool engine_alive [4];
} s_world_t;

static lp_dep_t
s_world_dep (void *arg, const char *msg_id)
{
    s_world_t *world = (s_world_t *) arg;
    for (const s_known_t *k = world->known; k->id; k++)
        if (strcmp (k->id, msg_id) == 0)
            return (lp_dep_t) { k->state, k->engine };
    return (lp_dep_t) { LP_DEP_UNKNOWN, -1 };
}

static bool
s_world_alive (void *arg, int engine)
{
    s_world_t *world = (s_world_t *) arg;
    return engine >= 0 && engine < 4 && world->engine_alive [engine];
}

//  Picks with a fresh copy of table (pick reorders its argument).
static int
s_pick (const lp_policy_t *policy, const lp_policy_engine_t *table, size_t count,
        const lp_policy_place_t *place)
{
    lp_policy_engine_t copy [16];
    assert (count <= 16);
    memcpy (copy, table, count * sizeof *copy);
    return lp_policy_pick (policy, copy, count, place);
}

void
lp_policy_test (bool verbose)
{
    printf (" * policy: ");
    fflush (stdout);
    //  @selftest
    //  The table: names both ways, leastload first (the default).
    assert (lp_policy_scheme_count () >= 5);
    assert (lp_policy_scheme ("leastload") == 0);
    for (int i = 0; i < lp_policy_scheme_count (); i++)
        assert (lp_policy_scheme (lp_policy_scheme_name (i)) == i);
    assert (lp_policy_scheme ("fastest") == -1);
    assert (lp_policy_scheme (NULL) == -1);
    assert (strcmp (lp_policy_scheme_name (-1), "?") == 0);
    assert (strcmp (lp_policy_scheme_name (lp_policy_scheme_count ()), "?") == 0);
    int leastload = lp_policy_scheme ("leastload"), lru = lp_policy_scheme ("lru");
    int plainrandom = lp_policy_scheme ("plainrandom");
    int weighted = lp_policy_scheme ("weighted"), twobin = lp_policy_scheme ("twobin");

    //  Four engines: 0 busy and recent, 1 idle and oldest, 2 one task,
    //  3 left (inactive) with nothing outstanding.
    const lp_policy_engine_t four [] = {
        { 0, true,  2, 40 },
        { 1, true,  0, 10 },
        { 2, true,  1, 20 },
        { 3, false, 0, 0 },
    };
    lp_policy_place_t any = { NULL, 0, -1, -1 };
    lp_policy_t policy = { leastload, 0, { NULL, NULL } };

    //  leastload: fewest outstanding; ties go to the least recently used
    assert (s_pick (&policy, four, 4, &any) == 1);
    const lp_policy_engine_t tied [] = {
        { 0, true, 1, 30 }, { 1, true, 1, 5 }, { 2, true, 1, 20 },
    };
    assert (s_pick (&policy, tied, 3, &any) == 1);
    //  lru: least recently used whatever its load
    policy.scheme = lru;
    const lp_policy_engine_t loaded_old [] = {
        { 0, true, 0, 50 }, { 1, true, 7, 3 }, { 2, true, 0, 9 },
    };
    assert (s_pick (&policy, loaded_old, 3, &any) == 1);
    policy.scheme = leastload;
    assert (s_pick (&policy, loaded_old, 3, &any) == 2);

    //  Eligibility: hwm, targets, follow, inactive
    policy.hwm = 1;                     //  only 1 and 3 have room; 3 is gone
    assert (s_pick (&policy, four, 4, &any) == 1);
    assert (!lp_policy_has_room (&policy, 1));
    assert (lp_policy_has_room (&policy, 0));
    policy.hwm = 0;
    assert (lp_policy_has_room (&policy, 1000000));
    int64_t two_and_three [] = { 3, 2 };
    lp_policy_sort_targets (two_and_three, 2);
    assert (two_and_three [0] == 2 && two_and_three [1] == 3);
    lp_policy_place_t targets = { two_and_three, 2, -1, -1 };
    assert (s_pick (&policy, four, 4, &targets) == 2);
    lp_policy_place_t follow = { NULL, 0, 0, -1 };
    assert (s_pick (&policy, four, 4, &follow) == 0);
    assert (!lp_policy_eligible (&policy, &four [3], &any));
    assert (lp_policy_eligible (&policy, &four [0], &any));
    assert (!lp_policy_eligible (&policy, &four [0], &targets));
    assert (lp_policy_eligible (&policy, &four [2], &targets));

    //  Nothing eligible: the task waits (-1)
    assert (s_pick (&policy, four, 0, &any) == -1);            //  no engines
    policy.hwm = 1;
    lp_policy_place_t busy_target = { (const int64_t []) { 0, 2 }, 2, -1, -1 };
    assert (s_pick (&policy, four, 4, &busy_target) == -1);    //  hwm reached
    policy.hwm = 2;
    const lp_policy_engine_t full [] = { { 0, true, 2, 1 }, { 1, true, 2, 2 } };
    assert (s_pick (&policy, full, 2, &any) == -1);            //  all at hwm
    policy.hwm = 0;
    assert (s_pick (&policy, full, 2, &any) == 0);             //  no limit
    lp_policy_place_t gone_only = { (const int64_t []) { 3 }, 1, -1, -1 };
    assert (s_pick (&policy, four, 4, &gone_only) == -1);      //  target gone
    lp_policy_place_t unknown = { (const int64_t []) { 7, 9 }, 2, -1, -1 };
    assert (s_pick (&policy, four, 4, &unknown) == -1);        //  excluded by targets
    lp_policy_place_t follow_out = { two_and_three, 2, 1, -1 };
    assert (s_pick (&policy, four, 4, &follow_out) == -1);     //  follow not a target
    lp_policy_place_t follow_gone = { NULL, 0, 3, -1 };
    assert (s_pick (&policy, four, 4, &follow_gone) == -1);

    //  avoid: skipped when another engine is eligible, else used
    lp_policy_place_t avoid_one = { NULL, 0, -1, 1 };
    assert (s_pick (&policy, four, 4, &avoid_one) == 2);
    lp_policy_place_t avoid_only = { (const int64_t []) { 1 }, 1, -1, 1 };
    assert (s_pick (&policy, four, 4, &avoid_only) == 1);

    //  Random schemes, scripted. Values below are uniform draws already
    //  (each < 2^32 - 2^32 % n).
    s_script_t script = { (const uint32_t []) { 2 }, 1, 0 };
    policy.rng = (lp_policy_rng_t) { s_script_random, &script };
    policy.scheme = plainrandom;
    //  eligible after compaction: 0, 1, 2 (3 is inactive); draw 2 -> engine 2
    assert (s_pick (&policy, four, 4, &any) == 2);
    //  rejection: 0xFFFFFFFF is beyond the last full block of 3, skipped
    script = (s_script_t) { (const uint32_t []) { 0xFFFFFFFFu, 4 }, 2, 0 };
    assert (lp_policy_uniform (&policy.rng, 3) == 1 && script.next == 2);
    //  twobin: two picks, the less loaded (then least recent) wins
    policy.scheme = twobin;
    script = (s_script_t) { (const uint32_t []) { 0, 2 }, 2, 0 };
    assert (s_pick (&policy, four, 4, &any) == 2);     //  load 2 vs load 1
    script = (s_script_t) { (const uint32_t []) { 1, 0 }, 2, 0 };
    assert (s_pick (&policy, four, 4, &any) == 1);
    script = (s_script_t) { (const uint32_t []) { 0, 0 }, 2, 0 };
    assert (s_pick (&policy, four, 4, &any) == 0);     //  same pick twice
    script = (s_script_t) { (const uint32_t []) { 2, 1 }, 2, 0 };
    assert (s_pick (&policy, tied, 3, &any) == 1);     //  tie: least recent
    //  weighted: engines 0 (load 0, weight 1) and 1 (load 3, weight 1/4);
    //  a unit draw below 0.8 lands on 0, above on 1.
    policy.scheme = weighted;
    const lp_policy_engine_t skew [] = { { 0, true, 0, 9 }, { 1, true, 3, 1 } };
    const uint32_t low = 0x40000000u, high = 0xF0000000u;  //  0.25, 0.94
    script = (s_script_t) { (const uint32_t []) { high, high }, 2, 0 };
    assert (s_pick (&policy, skew, 2, &any) == 1);     //  both picks on 1
    script = (s_script_t) { (const uint32_t []) { high, low }, 2, 0 };
    assert (s_pick (&policy, skew, 2, &any) == 0);     //  1 vs 0: less loaded
    script = (s_script_t) { (const uint32_t []) { low, low }, 2, 0 };
    assert (s_pick (&policy, skew, 2, &any) == 0);

    //  Every scheme in the table, with real randomness: always one of the
    //  eligible engines, never the avoided one while another is eligible,
    //  never past hwm; and the random ones reach every eligible engine.
    policy.rng = (lp_policy_rng_t) { NULL, NULL };
    const lp_policy_engine_t mixed [] = {
        { 0, true, 1, 3 }, { 1, false, 0, 0 }, { 2, true, 0, 7 }, { 3, true, 2, 1 },
        { 4, true, 0, 0 }, { 5, true, 1, 5 }, { 6, true, 0, 2 },
    };
    const int64_t allowed [] = { 0, 1, 2, 3, 4, 5 };
    lp_policy_place_t mixed_place = { allowed, 6, -1, 4 };
    for (int scheme = 0; scheme < lp_policy_scheme_count (); scheme++) {
        policy.scheme = scheme;
        policy.hwm = 2;
        int seen [7] = { 0 };
        for (int round = 0; round < 2000; round++) {
            int id = s_pick (&policy, mixed, 7, &mixed_place);
            //  eligible: 0, 2, 5 (1 inactive, 3 at hwm, 4 avoided, 6 not a target)
            assert (id == 0 || id == 2 || id == 5);
            seen [id]++;
        }
        if (scheme == plainrandom || scheme == weighted || scheme == twobin)
            assert (seen [0] && seen [2] && seen [5]);
        if (verbose)
            printf ("\n   %s: engine 0 %d, 2 %d, 5 %d of 2000", lp_policy_scheme_name (scheme),
                    seen [0], seen [2], seen [5]);
        //  One eligible engine: every scheme takes it; none: -1
        lp_policy_place_t only_two = { (const int64_t []) { 2 }, 1, -1, -1 };
        assert (s_pick (&policy, mixed, 7, &only_two) == 2);
        policy.hwm = 1;
        lp_policy_place_t only_busy = { (const int64_t []) { 0, 3, 5 }, 3, -1, -1 };
        assert (s_pick (&policy, mixed, 7, &only_busy) == -1);
    }

    //  Dependencies: given what is known of each id, met / wait / never
    const s_known_t known [] = {
        { "ok-on-1",   LP_DEP_SUCCEEDED, 1 },
        { "ok-on-2",   LP_DEP_SUCCEEDED, 2 },
        { "ok-on-1b",  LP_DEP_SUCCEEDED, 1 },
        { "bad-on-1",  LP_DEP_FAILED,    1 },
        { "ok-on-3",   LP_DEP_SUCCEEDED, 3 },
        { "running",   LP_DEP_PENDING,   -1 },
        { NULL, 0, 0 }
    };
    s_world_t world = { known, { true, true, true, false } };
    //  One case a line: after, follow (NULL-terminated), success / failure
    //  flags, the decision, the follow engine when met, the reason when
    //  never.
    static const struct {
        const char *after [3];
        const char *follow [3];
        bool success_ok, failure_ok;
        lp_deps_t expect;
        int where;
        const char *why;
    } cases [] = {
        //  none at all: met, no follow engine
        { { NULL }, { NULL }, true, false, LP_DEPS_MET, -1, NULL },
        { { "ok-on-1", "ok-on-2" }, { NULL }, true, false, LP_DEPS_MET, -1, NULL },
        //  a pending dependency: wait
        { { "ok-on-1", "running" }, { NULL }, true, false, LP_DEPS_WAIT, -1, NULL },
        //  unknown (never seen, or forgotten): never, even after a pending one
        { { "running", "nobody" }, { NULL }, true, false, LP_DEPS_IMPOSSIBLE, -1,
          "depends on task nobody, which is unknown here" },
        //  a failure when success is required; accepted with failure = true
        { { "bad-on-1" }, { NULL }, true, false, LP_DEPS_IMPOSSIBLE, -1,
          "depends on task bad-on-1, which failed (success required)" },
        { { "bad-on-1" }, { NULL }, true, true, LP_DEPS_MET, -1, NULL },
        //  a success when only failure counts
        { { "ok-on-1" }, { NULL }, false, true, LP_DEPS_IMPOSSIBLE, -1,
          "depends on task ok-on-1, which succeeded (failure=true, success=false required)" },
        //  follow: the engine they ran on
        { { "ok-on-2" }, { "ok-on-1", "ok-on-1b" }, true, false, LP_DEPS_MET, 1, NULL },
        //  follow with one still running: wait
        { { NULL }, { "ok-on-1", "running" }, true, false, LP_DEPS_WAIT, -1, NULL },
        //  follow of tasks that ran on two engines: never
        { { NULL }, { "ok-on-1", "ok-on-2" }, true, false, LP_DEPS_IMPOSSIBLE, -1,
          "follows tasks that ran on engines 1 and 2" },
        //  follow to an engine that is gone: never
        { { NULL }, { "ok-on-3" }, true, false, LP_DEPS_IMPOSSIBLE, -1,
          "follows tasks that ran on engine 3, which is gone" },
        //  after is judged before follow
        { { "bad-on-1" }, { "ok-on-1", "ok-on-2" }, true, false, LP_DEPS_IMPOSSIBLE, -1,
          "depends on task bad-on-1, which failed (success required)" },
    };
    char why [160];
    int where = 99;
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        lp_policy_deps_t deps = { cases [c].after, 0, cases [c].follow, 0,
                                  cases [c].success_ok, cases [c].failure_ok };
        while (deps.nafter < 3 && deps.after [deps.nafter])
            deps.nafter++;
        while (deps.nfollow < 3 && deps.follow [deps.nfollow])
            deps.nfollow++;
        *why = 0;
        lp_deps_t got = lp_policy_deps (&deps, s_world_dep, s_world_alive, &world,
                                        &where, why, sizeof why);
        if (verbose)
            printf ("\n   deps case %zu: %d %s", c, (int) got, why);
        assert (got == cases [c].expect);
        assert (got != LP_DEPS_MET || where == cases [c].where);
        assert (!cases [c].why || strcmp (why, cases [c].why) == 0);
    }
    //  The follow engine feeds the pick: only that engine is eligible
    const char *follow_one [] = { "ok-on-1", "ok-on-1b" };
    lp_policy_deps_t follow_deps = { NULL, 0, follow_one, 2, true, false };
    assert (lp_policy_deps (&follow_deps, s_world_dep, s_world_alive, &world, &where,
                            why, sizeof why) == LP_DEPS_MET);
    policy = (lp_policy_t) { leastload, 0, { NULL, NULL } };
    lp_policy_place_t after_follow = { NULL, 0, where, -1 };
    assert (s_pick (&policy, four, 4, &after_follow) == 1);
    //  @end
    printf (verbose? "\n   OK\n": "OK\n");
}
