/*  =========================================================================
    lp_guard - replay guard: msg_ids seen, bounded by time or by count

    Two kinds (docs/protocol.md, "Replays"):

      by time (window_msec > 0; the controller): a message whose header
      `date` is more than the window in the past or in the future is
      refused; otherwise its msg_id is refused when already seen and
      remembered until date + window, after which the date check refuses
      the message anyway. So the set is bounded by time. A hard cap
      (max_ids) bounds it by count too: past it, new ids are REFUSED and
      counted (lp_guard_refused_full), never accepted unguarded.

      by count (window_msec == 0; engines and clients): no date check; the
      last max_ids ids are remembered, the oldest forgotten first.

    One guard may be shared by several threads (the controller's hub, mux,
    control and scheduler actors each have a wire, all set to one guard):
    every call takes the guard's mutex, and admission is one atomic
    check-and-remember, so an id arriving on two channels at once is
    admitted once.

    Layout, O(1) per message and about 32 bytes per id remembered:
      - every id is hashed to 16 bytes (keyed BLAKE2b, key random per
        guard: ids are chosen by peers, the hash must not be steerable);
      - a ring of entries {digest, expiry} in arrival order; ids leave from
        its head when expired (by time) or when the ring is full (by
        count). Dates differ, so expiry is not quite in arrival order: an
        entry may outlive its expiry until those before it leave, at most
        one window later (a date is at most one window ahead of arrival);
      - an open-addressing table (linear probing, backward-shift delete) of
        ring positions, twice the ring's size.
    Ring and table start small, double while needed up to max_ids and
    halve again after a burst.
    =========================================================================
*/

#include "lp_guard.h"
#include "lp_util.h"
#include <sodium.h>
#include <pthread.h>
#include <inttypes.h>

#define LP_GUARD_DIGEST   16            //  bytes of an id's digest

//  One id remembered
typedef struct {
    uint8_t digest [LP_GUARD_DIGEST];   //  keyed hash of the msg_id
    int64_t expiry;                     //  wall usec it may leave; 0 = forgotten
} s_entry_t;

struct _lp_guard_t {
    pthread_mutex_t mutex;              //  guards everything below
    int64_t window_usec;                //  0: by count only
    size_t max_ids;                     //  hard cap on ids remembered
    uint8_t hash_key [crypto_generichash_KEYBYTES];  //  random per guard
    s_entry_t *ring;                    //  ids in arrival order
    size_t ring_cap;                    //  slots in ring (power of 2)
    size_t head;                        //  oldest entry
    size_t count;                       //  entries in ring, forgotten included
    size_t live;                        //  entries not forgotten
    uint32_t *table;                    //  ring position + 1, 0 = empty
    size_t table_cap;                   //  slots in table (2 * ring_cap)
    uint64_t refused_full;              //  ids refused because full
    uint64_t refused;                   //  ids refused for any reason
};

//  ---------------------------------------------------------------------
//  Creates a guard. window_msec > 0: by time; 0: by count. max_ids >= 1.

lp_guard_t *
lp_guard_new (int64_t window_msec, size_t max_ids)
{
    assert (window_msec >= 0);
    if (max_ids < 1 || max_ids > UINT32_MAX / 4)
        return NULL;
    if (sodium_init () < 0)
        return NULL;
    lp_guard_t *self = (lp_guard_t *) calloc (1, sizeof (lp_guard_t));
    if (!self)
        return NULL;
    if (pthread_mutex_init (&self->mutex, NULL) != 0) {
        free (self);
        return NULL;
    }
    self->window_usec = window_msec * 1000;
    self->max_ids = max_ids;
    randombytes_buf (self->hash_key, sizeof (self->hash_key));
    return self;
}

void
lp_guard_destroy (lp_guard_t **self_p)
{
    assert (self_p);
    lp_guard_t *self = *self_p;
    if (self) {
        pthread_mutex_destroy (&self->mutex);
        free (self->ring);
        free (self->table);
        free (self);
        *self_p = NULL;
    }
}

//  The window from $LP_REPLAY_WINDOW_MSEC when set to a positive integer,
//  else LP_REPLAY_WINDOW_MSEC.
int64_t
lp_guard_window_default (void)
{
    const char *text = getenv ("LP_REPLAY_WINDOW_MSEC");
    if (text && *text) {
        char *end = NULL;
        long long value = strtoll (text, &end, 10);
        if (end && *end == 0 && value > 0 && value <= (long long) 365 * 86400 * 1000)
            return (int64_t) value;
    }
    return LP_REPLAY_WINDOW_MSEC;
}

//  ---------------------------------------------------------------------
//  Table internals (mutex held)

static uint64_t
s_home (const uint8_t *digest)
{
    uint64_t h;
    memcpy (&h, digest, sizeof (h));
    return h;
}

//  Table slot holding digest, or table_cap when absent.
static size_t
s_find (lp_guard_t *self, const uint8_t *digest)
{
    if (!self->table)
        return self->table_cap;
    size_t mask = self->table_cap - 1;
    size_t i = s_home (digest) & mask;
    while (self->table [i]) {
        if (memcmp (self->ring [self->table [i] - 1].digest, digest, LP_GUARD_DIGEST) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return self->table_cap;
}

static void
s_table_insert (lp_guard_t *self, size_t position)
{
    size_t mask = self->table_cap - 1;
    size_t i = s_home (self->ring [position].digest) & mask;
    while (self->table [i])
        i = (i + 1) & mask;
    self->table [i] = (uint32_t) (position + 1);
}

//  Empties slot i, moving later entries of the probe run back so lookups
//  never stop early (no tombstones in the table).
static void
s_table_delete (lp_guard_t *self, size_t i)
{
    size_t mask = self->table_cap - 1;
    self->table [i] = 0;
    size_t j = i;
    while (true) {
        j = (j + 1) & mask;
        if (!self->table [j])
            break;
        size_t k = s_home (self->ring [self->table [j] - 1].digest) & mask;
        //  Entry at j may move to i unless its home lies cyclically in (i, j]
        bool stays = i <= j? (i < k && k <= j): (i < k || k <= j);
        if (!stays) {
            self->table [i] = self->table [j];
            self->table [j] = 0;
            i = j;
        }
    }
}

//  Rebuilds ring and table with ring_cap slots, dropping forgotten
//  entries. 0, or -1 when out of memory (nothing changed).
static int
s_rebuild (lp_guard_t *self, size_t ring_cap)
{
    assert (ring_cap >= self->live);
    s_entry_t *ring = (s_entry_t *) malloc (ring_cap * sizeof (s_entry_t));
    uint32_t *table = (uint32_t *) calloc (2 * ring_cap, sizeof (uint32_t));
    if (!ring || !table) {
        free (ring);
        free (table);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->ring [(self->head + i) & (self->ring_cap - 1)];
        if (entry->expiry)
            ring [n++] = *entry;
    }
    free (self->ring);
    free (self->table);
    self->ring = ring;
    self->table = table;
    self->ring_cap = ring_cap;
    self->table_cap = 2 * ring_cap;
    self->head = 0;
    self->count = n;
    self->live = n;
    for (size_t i = 0; i < n; i++)
        s_table_insert (self, i);
    return 0;
}

//  Removes the head entry.
static void
s_pop (lp_guard_t *self)
{
    s_entry_t *entry = &self->ring [self->head];
    if (entry->expiry) {
        size_t slot = s_find (self, entry->digest);
        assert (slot < self->table_cap);
        s_table_delete (self, slot);
        self->live--;
    }
    self->head = (self->head + 1) & (self->ring_cap - 1);
    self->count--;
}

//  Forgets expired entries from the head, and shrinks after a burst.
static void
s_expire (lp_guard_t *self, int64_t now)
{
    if (self->window_usec == 0)
        return;
    while (self->count > 0
       && (self->ring [self->head].expiry == 0 || self->ring [self->head].expiry < now))
        s_pop (self);
    if (self->ring_cap > LP_GUARD_MIN_CAP && self->live < self->ring_cap / 8)
        s_rebuild (self, self->ring_cap / 2);      //  on failure keep the big one
}

static void
s_digest (lp_guard_t *self, const char *msg_id, uint8_t *digest)
{
    crypto_generichash (digest, LP_GUARD_DIGEST, (const uint8_t *) msg_id,
                        strlen (msg_id), self->hash_key, sizeof (self->hash_key));
}

static size_t
s_cap_limit (lp_guard_t *self)
{
    size_t cap = LP_GUARD_MIN_CAP;
    while (cap < self->max_ids)
        cap *= 2;
    return cap;
}

//  ---------------------------------------------------------------------
//  Admission at a given wall time (the self-test moves the clock).

static int
s_admit_at (lp_guard_t *self, const char *msg_id, const char *date, int64_t now,
            char *reason, size_t reasonlen)
{
    char dummy [8];
    if (!reason) {
        reason = dummy;
        reasonlen = sizeof (dummy);
    }
    int64_t expiry = INT64_MAX;
    if (self->window_usec) {
        int64_t stamp;
        if (!date || lp_util_iso_parse (date, &stamp) != 0) {
            snprintf (reason, reasonlen, "header has no valid date");
            return LP_GUARD_DATE;
        }
        if (stamp < now - self->window_usec) {
            snprintf (reason, reasonlen, "date %s is older than the replay window (%" PRId64 " ms)",
                      date, self->window_usec / 1000);
            return LP_GUARD_DATE;
        }
        if (stamp > now + self->window_usec) {
            snprintf (reason, reasonlen, "date %s is more than the replay window (%" PRId64
                      " ms) in the future", date, self->window_usec / 1000);
            return LP_GUARD_DATE;
        }
        expiry = stamp + self->window_usec;
        if (expiry <= 0)
            expiry = 1;
    }
    uint8_t digest [LP_GUARD_DIGEST];
    s_digest (self, msg_id, digest);
    s_expire (self, now);
    if (s_find (self, digest) < self->table_cap) {
        snprintf (reason, reasonlen, "replayed msg_id %s", msg_id);
        return LP_GUARD_REPLAY;
    }
    if (self->live >= self->max_ids) {
        if (self->window_usec) {
            self->refused_full++;
            snprintf (reason, reasonlen, "replay guard full (%zu ids within the window)",
                      self->live);
            return LP_GUARD_FULL;
        }
        while (self->live >= self->max_ids)
            s_pop (self);                 //  by count: forget the oldest
    }
    if (self->count == self->ring_cap) {
        //  No free slot: grow when every entry is live (live < max_ids,
        //  so the doubled ring stays within s_cap_limit), else compact
        size_t cap = self->ring_cap? self->ring_cap: LP_GUARD_MIN_CAP;
        if (self->ring_cap && self->live == self->count)
            cap *= 2;
        assert (cap <= s_cap_limit (self));
        if (s_rebuild (self, cap) != 0) {
            snprintf (reason, reasonlen, "out of memory in the replay guard");
            return LP_GUARD_FULL;
        }
    }
    size_t position = (self->head + self->count) & (self->ring_cap - 1);
    memcpy (self->ring [position].digest, digest, LP_GUARD_DIGEST);
    self->ring [position].expiry = expiry;
    self->count++;
    self->live++;
    s_table_insert (self, position);
    return 0;
}

//  ---------------------------------------------------------------------
//  Admits msg_id: 0 when new (it is now remembered), -1 when refused
//  (reason filled: replayed, date out of the window or missing, full).

int
lp_guard_admit (lp_guard_t *self, const char *msg_id, const char *date,
                char *reason, size_t reasonlen)
{
    assert (self);
    assert (msg_id);
    int64_t now = lp_util_wall_usec ();
    pthread_mutex_lock (&self->mutex);
    int rc = s_admit_at (self, msg_id, date, now, reason, reasonlen);
    if (rc)
        self->refused++;
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

//  Forgets an admitted id (its message turned out malformed after all).
void
lp_guard_forget (lp_guard_t *self, const char *msg_id)
{
    assert (self);
    assert (msg_id);
    uint8_t digest [LP_GUARD_DIGEST];
    s_digest (self, msg_id, digest);
    pthread_mutex_lock (&self->mutex);
    size_t slot = s_find (self, digest);
    if (slot < self->table_cap) {
        size_t position = self->table [slot] - 1;
        s_table_delete (self, slot);
        self->ring [position].expiry = 0;
        self->live--;
        //  Forgotten entries leave with the head, or at the next rebuild
        while (self->count > 0 && self->ring [self->head].expiry == 0) {
            self->head = (self->head + 1) & (self->ring_cap - 1);
            self->count--;
        }
    }
    pthread_mutex_unlock (&self->mutex);
}

size_t
lp_guard_size (lp_guard_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t live = self->live;
    pthread_mutex_unlock (&self->mutex);
    return live;
}

uint64_t
lp_guard_refused (lp_guard_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    uint64_t refused = self->refused;
    pthread_mutex_unlock (&self->mutex);
    return refused;
}

uint64_t
lp_guard_refused_full (lp_guard_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    uint64_t refused = self->refused_full;
    pthread_mutex_unlock (&self->mutex);
    return refused;
}

int64_t
lp_guard_window_msec (lp_guard_t *self)
{
    assert (self);
    return self->window_usec / 1000;
}

//  ---------------------------------------------------------------------
//  Self-test

static void
s_iso (int64_t usec, char out [32])
{
    time_t secs = (time_t) (usec / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + n, 32 - n, ".%06dZ", (int) (usec % 1000000));
}

typedef struct {
    lp_guard_t *guard;                  //  shared by the threads
    int thread;                         //  which thread
    int admitted;                       //  ids it got admitted
} s_racer_t;

#define S_RACE_IDS 20000

static void *
s_racer (void *arg)
{
    s_racer_t *racer = (s_racer_t *) arg;
    char id [32], date [32];
    lp_util_iso_now (date);
    for (int i = 0; i < S_RACE_IDS; i++) {
        snprintf (id, sizeof (id), "race-%d", i);
        if (lp_guard_admit (racer->guard, id, date, NULL, 0) == 0)
            racer->admitted++;
    }
    return NULL;
}

void
lp_guard_test (bool verbose)
{
    printf (" * guard: ");
    fflush (stdout);
    //  @selftest
    char reason [256], id [64], date [32];
    int64_t now = (int64_t) 1800000000 * 1000000;       //  a fixed clock

    //  1. By time: a fresh date is admitted once; a replay refused
    lp_guard_t *guard = lp_guard_new (60000, 1000000);
    assert (guard);
    assert (lp_guard_window_msec (guard) == 60000);
    s_iso (now, date);
    assert (s_admit_at (guard, "captured", date, now, reason, sizeof (reason)) == 0);
    assert (s_admit_at (guard, "captured", date, now + 1000, reason, sizeof (reason)) == LP_GUARD_REPLAY);
    assert (strstr (reason, "replayed msg_id captured"));

    //  Observation 10 of issue 8: a captured request replayed after more
    //  than 65,536 other messages is still refused (the old guard forgot
    //  it after 65,536)
    for (int i = 0; i < 70000; i++) {
        snprintf (id, sizeof (id), "other-%d", i);
        assert (s_admit_at (guard, id, date, now + 2000, NULL, 0) == 0);
    }
    assert (lp_guard_size (guard) == 70001);
    assert (s_admit_at (guard, "captured", date, now + 3000, reason, sizeof (reason)) < 0);
    assert (strstr (reason, "replayed"));
    //  ...and once the window has passed, its date refuses it
    assert (s_admit_at (guard, "captured", date, now + 61000000, reason, sizeof (reason)) == LP_GUARD_DATE);
    if (verbose)
        printf ("\n    %s", reason);
    assert (strstr (reason, "older than the replay window (60000 ms)"));
    //  The expired ids have left: the set is bounded by time
    char later [32];
    s_iso (now + 61000000, later);
    assert (s_admit_at (guard, "fresh", later, now + 61000000, NULL, 0) == 0);
    assert (lp_guard_size (guard) == 1);

    //  2. Dates: old, future beyond the skew, missing, malformed, boundaries
    s_iso (now - 60000001, date);
    assert (s_admit_at (guard, "old", date, now, reason, sizeof (reason)) == LP_GUARD_DATE);
    assert (strstr (reason, "older than the replay window"));
    s_iso (now - 59999000, date);
    assert (s_admit_at (guard, "old-but-ok", date, now, reason, sizeof (reason)) == 0);
    s_iso (now + 60000001, date);
    assert (s_admit_at (guard, "future", date, now, reason, sizeof (reason)) < 0);
    assert (strstr (reason, "in the future"));
    s_iso (now + 59000000, date);
    assert (s_admit_at (guard, "skewed", date, now, reason, sizeof (reason)) == 0);
    assert (s_admit_at (guard, "nodate", NULL, now, reason, sizeof (reason)) == LP_GUARD_DATE);
    assert (strstr (reason, "no valid date"));
    assert (s_admit_at (guard, "baddate", "yesterday", now, reason, sizeof (reason)) < 0);
    assert (strstr (reason, "no valid date"));
    //  A future-dated id is remembered until its own date + window
    s_iso (now + 59000000, date);
    assert (s_admit_at (guard, "skewed", date, now + 100000000, reason, sizeof (reason)) < 0);
    assert (strstr (reason, "replayed"));
    lp_guard_destroy (&guard);
    lp_guard_destroy (&guard);          //  idempotent

    //  3. Hard cap by time: beyond it new ids are refused and counted
    guard = lp_guard_new (60000, 3000);
    assert (guard);
    s_iso (now, date);
    for (int i = 0; i < 3000; i++) {
        snprintf (id, sizeof (id), "cap-%d", i);
        assert (s_admit_at (guard, id, date, now, NULL, 0) == 0);
    }
    assert (s_admit_at (guard, "one-more", date, now, reason, sizeof (reason)) == LP_GUARD_FULL);
    assert (strstr (reason, "replay guard full"));
    assert (lp_guard_refused_full (guard) == 1);
    assert (s_admit_at (guard, "cap-0", date, now, reason, sizeof (reason)) < 0);
    assert (strstr (reason, "replayed"));
    //  Forget makes room, and the id may come again
    lp_guard_forget (guard, "cap-5");
    lp_guard_forget (guard, "never-seen");
    assert (lp_guard_size (guard) == 2999);
    assert (s_admit_at (guard, "cap-5", date, now, NULL, 0) == 0);
    //  Time passes: room again, and memory shrinks back
    s_iso (now + 120000001, later);
    assert (s_admit_at (guard, "one-more", later, now + 120000001, NULL, 0) == 0);
    assert (lp_guard_size (guard) == 1);
    assert (guard->ring_cap <= 2 * LP_GUARD_MIN_CAP);
    lp_guard_destroy (&guard);

    //  4. By count (engines, clients): no date check, the oldest leave
    guard = lp_guard_new (0, 5000);
    assert (guard);
    for (int i = 0; i < 5000; i++) {
        snprintf (id, sizeof (id), "n-%d", i);
        assert (s_admit_at (guard, id, NULL, now, NULL, 0) == 0);
    }
    assert (s_admit_at (guard, "n-0", NULL, now, NULL, 0) < 0);
    assert (s_admit_at (guard, "n-new", "1970-01-01T00:00:00.000000Z", now, NULL, 0) == 0);
    assert (s_admit_at (guard, "n-0", NULL, now, NULL, 0) == 0);      //  forgotten
    assert (s_admit_at (guard, "n-2", NULL, now, NULL, 0) < 0);
    assert (s_admit_at (guard, "n-4999", NULL, now, NULL, 0) < 0);
    assert (lp_guard_size (guard) == 5000);
    //  Forgetting in the middle, then wrapping the ring many times
    lp_guard_forget (guard, "n-2000");
    for (int i = 0; i < 40000; i++) {
        snprintf (id, sizeof (id), "m-%d", i);
        assert (s_admit_at (guard, id, NULL, now, NULL, 0) == 0);
    }
    assert (lp_guard_size (guard) == 5000);
    assert (s_admit_at (guard, "m-39999", NULL, now, NULL, 0) < 0);
    assert (s_admit_at (guard, "m-35000", NULL, now, NULL, 0) < 0);
    assert (s_admit_at (guard, "m-34000", NULL, now, NULL, 0) == 0);
    lp_guard_destroy (&guard);

    //  5. Shared by threads: each id admitted exactly once
    guard = lp_guard_new (60000, 1000000);
    assert (guard);
    s_racer_t racers [4];
    pthread_t threads [4];
    for (int t = 0; t < 4; t++) {
        racers [t] = (s_racer_t) { guard, t, 0 };
        assert (pthread_create (&threads [t], NULL, s_racer, &racers [t]) == 0);
    }
    int admitted = 0;
    for (int t = 0; t < 4; t++) {
        pthread_join (threads [t], NULL);
        admitted += racers [t].admitted;
    }
    assert (admitted == S_RACE_IDS);
    assert (lp_guard_refused (guard) == 3 * S_RACE_IDS);
    lp_guard_destroy (&guard);

    //  6. The environment sets the default window
    char *saved = getenv ("LP_REPLAY_WINDOW_MSEC")? strdup (getenv ("LP_REPLAY_WINDOW_MSEC")): NULL;
    setenv ("LP_REPLAY_WINDOW_MSEC", "5000", 1);
    assert (lp_guard_window_default () == 5000);
    setenv ("LP_REPLAY_WINDOW_MSEC", "junk", 1);
    assert (lp_guard_window_default () == LP_REPLAY_WINDOW_MSEC);
    unsetenv ("LP_REPLAY_WINDOW_MSEC");
    assert (lp_guard_window_default () == LP_REPLAY_WINDOW_MSEC);
    if (saved) {
        setenv ("LP_REPLAY_WINDOW_MSEC", saved, 1);
        free (saved);
    }
    assert (lp_guard_new (60000, 0) == NULL);
    //  @end
    printf ("%sOK\n", verbose? "\n": "");
}
