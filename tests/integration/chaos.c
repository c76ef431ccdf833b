/*  chaos.c - every task ends exactly once, whatever happens to the engines

    A 10,000-task load-balanced run on 6 engines, during which this test
    kill -9s two engines, SIGSTOPs a third until the controller declares it
    dead (then SIGCONTs it, and it must come back under its old id), and
    injects hostile traffic on the task channel: signed tasks whose content
    no engine can decode, a replay of a task already sent, and unsigned
    junk. Half the tasks carry retries = 1.

    The tasks go out through the raw wire (lp_rawwire.h), so replies are
    counted on the wire, not through the client library that could hide a
    duplicate: every msg_id sent must get exactly one reply; an "ok" reply
    must carry its own task's value; errors may only be EngineError (a
    killed engine, no retries left) or, for the undecodable tasks,
    ProtocolError (or EngineError when their engine died first). Nothing may hang: the run fails when no reply comes for
    LPT_DEADLINE_MS. At the end every engine must be idle with queue 0.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"
#include <signal.h>
#include <unistd.h>

#define NTASKS       10000
#define NHOSTILE     20             //  signed, undecodable tasks
#define NSLOTS       32768          //  hash of msg_ids (power of two)
#define NENGINES     6

typedef struct {
    char id[33];                    //  msg_id
    int index;                      //  task number, -1 for hostile ones
    int replies;                    //  replies seen
} task_t;

static task_t tasks[NTASKS + NHOSTILE];
static int ntasks;
static int slots[NSLOTS];           //  index + 1 into tasks, 0 = free
static lpw_t wire;
static void *sock;

static unsigned
s_hash (const char *id)
{
    unsigned h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char) *id) * 16777619u;
    return h;
}

static void
s_remember (const char *id, int index)
{
    CHECK (ntasks < NTASKS + NHOSTILE, "too many tasks");
    task_t *t = &tasks[ntasks];
    snprintf (t->id, sizeof t->id, "%s", id);
    t->index = index;
    unsigned h = s_hash (id) & (NSLOTS - 1);
    while (slots[h])
        h = (h + 1) & (NSLOTS - 1);
    slots[h] = ++ntasks;
}

static task_t *
s_find (const char *id)
{
    unsigned h = s_hash (id) & (NSLOTS - 1);
    while (slots[h]) {
        task_t *t = &tasks[slots[h] - 1];
        if (strcmp (t->id, id) == 0)
            return t;
        h = (h + 1) & (NSLOTS - 1);
    }
    return NULL;
}

//  Header extra: retries = 1.
static void
s_retries (msgpack_packer *pk, void *arg)
{
    (void) arg;
    lpw_pack_str (pk, "retries");
    msgpack_pack_int (pk, 1);
}

//  A task "lp.sleep(0.0005) return i", built into f.
static void
s_build_task (lpw_frames_t *f, int i)
{
    char code[96], id[33];
    snprintf (code, sizeof code, "lp.sleep(0.0005) return %d", i);
    msgpack_sbuffer sb;
    lpw_code_content (&sb, code);
    bool retry = i % 2 == 0;
    lpw_build (&wire, f, id, "execute_request", retry ? 1 : 0, retry ? s_retries : NULL, NULL,
               sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    s_remember (id, i);
}

//  A signed apply_request whose argument is a typed array referring to
//  three buffer frames the message does not have.
static void
s_build_hostile (lpw_frames_t *f)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    lpw_pack_str (&pk, "fn");
    lpw_pack_str (&pk, "function (x) return #x end");
    lpw_pack_str (&pk, "args");
    msgpack_pack_array (&pk, 1);
    lpw_pack_typed_ref (&pk, 1, 0, 3);
    char id[33];
    lpw_build (&wire, f, id, "apply_request", 0, NULL, NULL, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    s_remember (id, -1);
}

static void
s_send_blocking (const lpw_frames_t *f)
{
    double t0 = lpt_now_ms ();
    while (!lpw_send (sock, f, ZMQ_DONTWAIT)) {
        CHECK (lpt_now_ms () - t0 < LPT_DEADLINE_MS, "task channel accepts nothing for %d ms",
               LPT_DEADLINE_MS);
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLOUT, 0 };
        zmq_poll (&item, 1, 50);
    }
}

static int ok_count, engine_errors, protocol_errors, answered;

static void
s_on_reply (const lpw_reply_t *r)
{
    task_t *t = s_find (r->parent_id);
    CHECK (t, "a reply (%s %s) to msg_id %s, which this test never sent", r->msg_type,
           r->status, r->parent_id);
    t->replies++;
    CHECK (t->replies == 1, "task %d (msg_id %s) answered %d times; this time %s %s: %s",
           t->index, t->id, t->replies, r->status, r->ename, r->evalue);
    answered++;
    if (strcmp (r->status, "ok") == 0) {
        CHECK (t->index >= 0, "an undecodable task (msg_id %s) ran and said ok", t->id);
        CHECK (r->has_value && r->value == t->index,
               "task %d got the value %lld: a reply was matched to the wrong request",
               t->index, r->has_value ? (long long) r->value : -1LL);
        ok_count++;
    }
    else
    if (t->index < 0) {
        //  Its engine may have died (SIGSTOP, kill -9) before reading it.
        CHECK (strcmp (r->ename, "ProtocolError") == 0 || strcmp (r->ename, "EngineError") == 0,
               "undecodable task got %s: %s, expected ProtocolError", r->ename, r->evalue);
        if (strcmp (r->ename, "ProtocolError") == 0)
            protocol_errors++;
        else
            engine_errors++;
    }
    else {
        CHECK (strcmp (r->ename, "EngineError") == 0,
               "task %d failed with %s: %s (only an engine's death may fail it)", t->index,
               r->ename, r->evalue);
        engine_errors++;
    }
}

//  Reads every reply that is waiting (up to timeout_ms for the first).
static int
s_drain (int timeout_ms)
{
    int n = 0;
    lpw_reply_t r;
    while (lpw_recv_reply (&wire, sock, &r, n == 0 ? timeout_ms : 0)) {
        s_on_reply (&r);
        n++;
    }
    return n;
}

//  Every engine of the status is idle with queue 0 (and there are want).
static bool
s_all_idle (lp_client_t *client, int want, char *last, size_t lastlen)
{
    lp_value_t *status = lp_client_status (client, 5000);
    if (!status) {
        snprintf (last, lastlen, "status failed: %s", lp_client_error (client));
        return false;
    }
    char *text = lp_value_print (status);
    snprintf (last, lastlen, "%s", text ? text : "?");
    free (text);
    bool idle = (int) lp_value_len (status) == want;
    for (size_t i = 0; idle && i < lp_value_len (status); i++) {
        const lp_value_t *row = lp_value_at (status, i);
        const char *state = lp_value_as_string (lp_value_get (row, "state"), NULL);
        idle = state && strcmp (state, "idle") == 0 && lp_value_as_int (lp_value_get (row, "queue")) == 0;
    }
    lp_value_destroy (&status);
    return idle;
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect_n (argc, argv, NENGINES);
    long pid[NENGINES];
    for (int i = 0; i < NENGINES; i++)
        pid[i] = lpt_engine_pid (client, i);
    char *endpoint = lpw_open (&wire, argv[1], "task");
    sock = lpw_dealer (&wire, endpoint);
    free (endpoint);

    lpw_frames_t f = { 0 };
    lpw_frames_t replay = { 0 };
    int sent = 0;
    bool killed1 = false, killed2 = false, hostile = false;
    bool stopped = false, continued = false;
    double stopped_at = 0, last_progress = lpt_now_ms ();
    while (answered < ntasks || sent < NTASKS) {
        //  Keep about 2,000 tasks in flight.
        while (sent < NTASKS && sent - answered < 2000) {
            s_build_task (&f, sent);
            s_send_blocking (&f);
            if (sent == 100) {
                replay = f;                 //  kept for the replay below
                f = (lpw_frames_t) { 0 };
            }
            else
                lpw_frames_free (&f);
            sent++;
        }
        if (s_drain (100) > 0)
            last_progress = lpt_now_ms ();
        CHECK (lpt_now_ms () - last_progress < LPT_DEADLINE_MS,
               "no reply for %d ms: %d of %d tasks answered (sent %d); a task vanished",
               LPT_DEADLINE_MS, answered, ntasks, sent);
        lp_client_poll (client, 0);         //  notifications: engine ids

        if (!killed1 && answered >= 1000) {
            lpt_say ("kill -9 engine 1 (pid %ld) with %d answered", pid[1], answered);
            CHECK (kill ((pid_t) pid[1], SIGKILL) == 0, "kill engine 1");
            killed1 = true;
        }
        if (!stopped && answered >= 2000) {
            lpt_say ("SIGSTOP engine 2 (pid %ld) with %d answered", pid[2], answered);
            CHECK (kill ((pid_t) pid[2], SIGSTOP) == 0, "stop engine 2");
            stopped = true;
            stopped_at = lpt_now_ms ();
        }
        if (stopped && !continued && !lpt_has_id (client, 2)) {
            lpt_say ("engine 2 declared dead after %.0f ms; SIGCONT", lpt_now_ms () - stopped_at);
            CHECK (kill ((pid_t) pid[2], SIGCONT) == 0, "continue engine 2");
            continued = true;
        }
        CHECK (!stopped || continued || lpt_now_ms () - stopped_at < LPT_DEADLINE_MS,
               "a SIGSTOPped engine was not declared dead within %d ms", LPT_DEADLINE_MS);
        if (!hostile && answered >= 3000) {
            lpt_say ("injecting %d undecodable signed tasks, a replay and junk", NHOSTILE);
            for (int i = 0; i < NHOSTILE; i++) {
                s_build_hostile (&f);
                s_send_blocking (&f);
                lpw_frames_free (&f);
            }
            s_send_blocking (&replay);      //  must not produce a second reply
            lpw_frames_free (&replay);
            const char junk[] = "not a message";
            zmq_send (sock, junk, sizeof junk, ZMQ_DONTWAIT);
            zmq_send (sock, "<LPMSG>", 7, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (sock, "0000", 4, ZMQ_DONTWAIT);
            hostile = true;
        }
        if (!killed2 && answered >= 5000) {
            lpt_say ("kill -9 engine 3 (pid %ld) with %d answered", pid[3], answered);
            CHECK (kill ((pid_t) pid[3], SIGKILL) == 0, "kill engine 3");
            killed2 = true;
        }
    }
    CHECK (killed1 && killed2 && hostile && continued, "the chaos did not all happen");
    lpt_say ("%d tasks answered once each: %d ok, %d EngineError, %d ProtocolError",
             answered, ok_count, engine_errors, protocol_errors);
    //  Five engines were alive when they went out: most must reach one.
    CHECK (protocol_errors >= NHOSTILE / 2, "only %d of %d undecodable tasks got ProtocolError",
           protocol_errors, NHOSTILE);

    //  Engine 2 comes back under its old id; then all 4 live engines idle.
    double t0 = lpt_now_ms ();
    char last[4096] = "";
    while (!(lpt_has_id (client, 2) && s_all_idle (client, NENGINES - 2, last, sizeof last))) {
        CHECK (lpt_now_ms () - t0 < LPT_DEADLINE_MS,
               "engines not all idle with queue 0 (and engine 2 back) within %d ms: %s",
               LPT_DEADLINE_MS, last);
        s_drain (0);
        lp_client_poll (client, 100);
    }
    //  Nothing is in flight now: any reply still waiting is a duplicate.
    s_drain (200);
    lpt_say ("all %d engines idle, queue 0: %s", NENGINES - 2, last);
    zmq_close (sock);
    zmq_ctx_term (wire.ctx);
    lp_client_destroy (&client);
    printf ("chaos: OK\n");
    return 0;
}
