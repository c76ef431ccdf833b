/*  targets.c - header.targets: duplicates folded, oversized lists refused
    at once, nobody stalled (issue 8, observation 7)

    Speaks the wire directly (lp_rawwire.h) so that it controls the target
    list exactly. Checks, on the mux (direct) channel:
      - [e, e] runs once, gets one reply, and the engine's queue returns to
        0 (before: one reply, the engine dropped the second copy as a
        replay, and the queue count leaked for good);
      - a non-integer id is refused: ONE ProtocolError, metadata engine -1;
      - 20,000 and 100,000 ids are refused with ONE ProtocolError each,
        and another client's request sent right after is answered at once
        (before: 20,000 ids stalled other clients for ~38 s, 100,000 pinned
        the controller for minutes);
    and on the task channel: [e, e, e] runs once; 20,000 ids are refused
    with one ProtocolError.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

#define STALL_LIMIT_MS 5000         //  another client's request answered within

typedef lpw_targets_t targets_t;

static lpw_t wire;

//  Sends an execute_request with code and targets on sock; fills id.
static void
s_send (void *sock, const char *code, targets_t *targets, char id[33])
{
    msgpack_sbuffer sb;
    lpw_code_content (&sb, code);
    lpw_frames_t f = { 0 };
    lpw_build (&wire, &f, id, "execute_request", targets ? 1 : 0, targets ? lpw_pack_targets : NULL,
               targets, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    lpw_send (sock, &f, 0);
    lpw_frames_free (&f);
}

//  Sends a probe to engine e on sock and collects the replies to `id`
//  until the probe's own reply (engines and the controller answer a
//  client in order, so nothing for id can come later). Returns how many.
static int
s_replies_until_probe (void *sock, int64_t e, const char *id, lpw_reply_t *first)
{
    char probe[33];
    targets_t t = { &e, 1, false };
    s_send (sock, "return 'probe'", &t, probe);
    int count = 0;
    double t0 = lpt_now_ms ();
    while (true) {
        lpw_reply_t reply;
        int left = LPT_DEADLINE_MS - (int) (lpt_now_ms () - t0);
        CHECK (left > 0 && lpw_recv_reply (&wire, sock, &reply, left),
               "no reply to the probe within %d ms", LPT_DEADLINE_MS);
        if (strcmp (reply.parent_id, probe) == 0)
            return count;
        CHECK (strcmp (reply.parent_id, id) == 0, "stray reply to %s", reply.parent_id);
        if (count == 0 && first)
            *first = reply;
        count++;
    }
}

//  Sends `count` ids on sock (refused), and checks that the other client
//  is served meanwhile and that exactly one ProtocolError comes back.
static void
s_huge (void *sock, lp_client_t *client, int64_t e, size_t count)
{
    int64_t *ids = malloc (count * sizeof *ids);
    CHECK (ids, "out of memory");
    for (size_t i = 0; i < count; i++)
        ids[i] = (int64_t) i;
    targets_t t = { ids, count, false };
    char id[33];
    double t0 = lpt_now_ms ();
    s_send (sock, "return 'huge'", &t, id);
    //  Another client, right after.
    int target = (int) e;
    lp_view_t *view = lp_client_view (client, &target, 1);
    lp_result_t *r = lp_view_execute (view, "return 7");
    CHECK (r, "execute: %s", lp_client_error (client));
    CHECK (lp_result_wait (r, LPT_DEADLINE_MS) == 0, "the other client's request never ended");
    double waited = lpt_now_ms () - t0;
    LPT_EXPECT_INT (r, 0, 7, "other client's request");
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    CHECK (waited < STALL_LIMIT_MS, "a request naming %zu targets held up another client's "
           "request for %.0f ms", count, waited);
    lpw_reply_t reply;
    int n = s_replies_until_probe (sock, e, id, &reply);
    CHECK (n == 1, "%zu targets: %d replies, expected one refusal", count, n);
    CHECK (strcmp (reply.ename, "ProtocolError") == 0 && reply.meta_engine == -1,
           "%zu targets: reply %s (engine %lld), expected ProtocolError from engine -1",
           count, reply.ename, (long long) reply.meta_engine);
    lpt_say ("%zu targets -> one %s in %.0f ms (%s); another client served meanwhile",
             count, reply.ename, waited, reply.evalue);
    free (ids);
}

int
main (int argc, char **argv)
{
    printf ("targets:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int eids[64];
    int n = lp_client_ids (client, eids, 64);
    CHECK (n >= 2, "need 2 engines");
    int64_t e = eids[1];
    char *endpoint = lpw_open (&wire, argv[1], "mux");
    void *mux = lpw_dealer (&wire, endpoint);
    free (endpoint);

    //  [e, e]: once, one reply, queue back to 0
    int64_t twice[2] = { e, e };
    targets_t t = { twice, 2, false };
    char id[33];
    s_send (mux, "calls = (calls or 0) + 1 return calls", &t, id);
    lpw_reply_t reply;
    int replies = s_replies_until_probe (mux, e, id, &reply);
    CHECK (replies == 1, "targets [%lld, %lld]: %d replies, expected 1 (duplicates folded)",
           (long long) e, (long long) e, replies);
    CHECK (strcmp (reply.status, "ok") == 0 && reply.value == 1, "[e, e] reply: %s %s %lld",
           reply.status, reply.ename, (long long) reply.value);
    int64_t queue = lpt_queue (client, (int) e);
    CHECK (queue == 0, "engine %lld shows queue %lld after [e, e] was answered (leaked)",
           (long long) e, (long long) queue);
    lpt_say ("targets [%lld, %lld] -> one reply, queue 0", (long long) e, (long long) e);

    //  a non-integer id
    t = (targets_t) { twice, 2, true };
    s_send (mux, "return 1", &t, id);
    replies = s_replies_until_probe (mux, e, id, &reply);
    CHECK (replies == 1 && strcmp (reply.ename, "ProtocolError") == 0 && reply.meta_engine == -1,
           "targets [\"0\", e]: %d replies, first %s engine %lld; expected one ProtocolError "
           "from engine -1", replies, reply.ename, (long long) reply.meta_engine);
    lpt_say ("targets [\"0\", %lld] -> %s: %s", (long long) e, reply.ename, reply.evalue);

    //  more ids than engines, at scale
    s_huge (mux, client, e, 20000);
    s_huge (mux, client, e, 100000);

    //  task channel
    endpoint = lpw_open (&wire, argv[1], "task");
    void *task = lpw_dealer (&wire, endpoint);
    free (endpoint);
    int64_t thrice[3] = { e, e, e };
    t = (targets_t) { thrice, 3, false };
    s_send (task, "tcalls = (tcalls or 0) + 1 return tcalls", &t, id);
    CHECK (lpw_recv_reply (&wire, task, &reply, LPT_DEADLINE_MS), "task [e, e, e]: no reply");
    CHECK (strcmp (reply.parent_id, id) == 0 && strcmp (reply.status, "ok") == 0
           && reply.value == 1 && reply.meta_engine == e,
           "task [e, e, e]: %s %s value %lld on engine %lld", reply.status, reply.ename,
           (long long) reply.value, (long long) reply.meta_engine);
    int64_t *ids = malloc (20000 * sizeof *ids);
    CHECK (ids, "out of memory");
    for (int i = 0; i < 20000; i++)
        ids[i] = i;
    t = (targets_t) { ids, 20000, false };
    s_send (task, "return 1", &t, id);
    CHECK (lpw_recv_reply (&wire, task, &reply, LPT_DEADLINE_MS), "task with 20,000 targets: no reply");
    CHECK (strcmp (reply.parent_id, id) == 0 && strcmp (reply.ename, "ProtocolError") == 0
           && reply.meta_engine == -1, "task with 20,000 targets: %s engine %lld",
           reply.ename, (long long) reply.meta_engine);
    lpt_say ("task: [e, e, e] ran once; 20,000 targets -> %s", reply.ename);
    free (ids);

    zmq_close (mux);
    zmq_close (task);
    zmq_ctx_term (wire.ctx);
    lp_client_destroy (&client);
    printf ("targets: OK\n");
    return 0;
}
