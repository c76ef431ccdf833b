/*  replay_window.c - the controller's replay guard is bounded by time,
    not by count (issue 8, observation 10)

    Speaks the wire directly (lp_rawwire.h). A captured direct request runs
    once; after more than 65,536 other requests to the same engine (the
    old guards, controller's and engine's, remembered the last 65,536 ids
    each and forgot it) its replay must still not run. Requests dated more than the
    replay window (60 s) in the past or in the future must not run either.

    Judged without sleeping: after each message that must be dropped, a
    probe request goes to the same engine; an engine answers in order and
    the controller forwards in order, so a reply the dropped message could
    have caused arrives before the probe's reply.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

#define FILLER      70000           //  > 65,536
#define BATCH       1000            //  filler requests in flight

static lpw_t wire;
static void *mux;
static int engine;

//  A signed execute_request to target; msg_id filled.
static void
s_request (lpw_frames_t *f, char msg_id [33], int target, const char *code)
{
    msgpack_sbuffer sb;
    lpw_code_content (&sb, code);
    lpw_build_to (&wire, f, msg_id, "execute_request", target, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
}

//  The same, with the header's date offset_sec from now.
static void
s_request_dated (lpw_frames_t *f, char msg_id [33], int target, const char *code,
                 long offset_sec)
{
    wire.date_offset_sec = offset_sec;
    s_request (f, msg_id, target, code);
    wire.date_offset_sec = 0;
}

//  Sends a probe to the engine and reads replies until the probe's; fails
//  when any reply before it answers `forbidden`.
static void
s_probe (const char *forbidden, const char *what)
{
    lpw_frames_t f = { 0 };
    char probe_id [33];
    s_request (&f, probe_id, engine, "return 7");
    CHECK (lpw_send (mux, &f, 0), "cannot send the probe");
    lpw_frames_free (&f);
    while (true) {
        lpw_reply_t reply;
        CHECK (lpw_recv_reply (&wire, mux, &reply, LPT_DEADLINE_MS),
               "no reply to the probe after %s within %d ms", what, LPT_DEADLINE_MS);
        //  Refused means never run: the controller may say so with an
        //  error reply (ProtocolError naming the replay window), never
        //  with the request's result
        if (strcmp (reply.parent_id, forbidden) == 0) {
            CHECK (strcmp (reply.status, "error") == 0 && strcmp (reply.ename, "ProtocolError") == 0
                   && strstr (reply.evalue, "replay window"),
                   "%s was not refused: it got a reply (%s %s %s %s)", what, reply.msg_type,
                   reply.status, reply.ename, reply.evalue);
            lpt_say ("%s answered: %s", what, reply.evalue);
            continue;
        }
        if (strcmp (reply.parent_id, probe_id) == 0) {
            CHECK (reply.has_value && reply.value == 7, "probe answered %s %s", reply.status,
                   reply.evalue);
            return;
        }
    }
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [8];
    CHECK (lp_client_ids (client, ids, 8) >= 1, "no engine");
    engine = ids [0];
    char *endpoint = lpw_open (&wire, argv [1], "mux");
    mux = lpw_dealer (&wire, endpoint);
    free (endpoint);

    //  1. A request runs once; we keep its frames, as an eavesdropper would
    lpw_frames_t captured = { 0 };
    char captured_id [33];
    s_request (&captured, captured_id, engine, "return 41 + 1");
    CHECK (lpw_send (mux, &captured, 0), "cannot send");
    lpw_reply_t reply;
    CHECK (lpw_recv_reply (&wire, mux, &reply, LPT_DEADLINE_MS), "no reply to the first request");
    CHECK (strcmp (reply.parent_id, captured_id) == 0 && reply.has_value && reply.value == 42,
           "first request answered %s %s %s", reply.status, reply.ename, reply.evalue);
    lpt_say ("captured request ran once");

    //  2. More than 65,536 other signed requests through the controller
    //  to the same engine (so that the engine's own guard, by count,
    //  forgets the captured id too: only the controller's guard by time
    //  stands between the replay and the engine)
    double started = lpt_now_ms ();
    int sent = 0, answered = 0;
    while (answered < FILLER) {
        while (sent < FILLER && sent - answered < BATCH) {
            lpw_frames_t f = { 0 };
            char id [33];
            s_request (&f, id, engine, "return 0");
            CHECK (lpw_send (mux, &f, 0), "cannot send filler");
            lpw_frames_free (&f);
            sent++;
        }
        CHECK (lpw_recv_reply (&wire, mux, &reply, LPT_DEADLINE_MS),
               "filler: only %d of %d answered", answered, sent);
        CHECK (reply.has_value && reply.value == 0,
               "filler answered %s %s %s", reply.status, reply.ename, reply.evalue);
        answered++;
    }
    lpt_say ("%d other requests through the controller in %.1f s", FILLER,
             (lpt_now_ms () - started) / 1000);

    //  3. The replay: dropped, not run
    CHECK (lpw_send (mux, &captured, 0), "cannot send the replay");
    s_probe (captured_id, "a request replayed after 70,000 other messages");
    lpt_say ("replay after %d messages refused", FILLER);
    lpw_frames_free (&captured);

    //  4. Dates outside the window (60 s): two minutes old, two ahead
    const long offsets [2] = { -120, 120 };
    for (int i = 0; i < 2; i++) {
        lpw_frames_t f = { 0 };
        char id [33];
        s_request_dated (&f, id, engine, "return 13", offsets [i]);
        CHECK (lpw_send (mux, &f, 0), "cannot send");
        lpw_frames_free (&f);
        s_probe (id, i == 0? "a request dated 120 s ago": "a request dated 120 s ahead");
        lpt_say ("request dated %+ld s refused", offsets [i]);
    }
    //  ... while one within the window (clock skew of 10 s) runs
    {
        lpw_frames_t f = { 0 };
        char id [33];
        s_request_dated (&f, id, engine, "return 13", 10);
        CHECK (lpw_send (mux, &f, 0), "cannot send");
        lpw_frames_free (&f);
        CHECK (lpw_recv_reply (&wire, mux, &reply, LPT_DEADLINE_MS),
               "no reply to a request dated 10 s ahead");
        CHECK (strcmp (reply.parent_id, id) == 0 && reply.has_value && reply.value == 13,
               "request dated 10 s ahead answered %s %s %s", reply.status, reply.ename,
               reply.evalue);
        lpt_say ("request dated +10 s (skew within the window) runs");
    }
    zmq_close (mux);
    zmq_ctx_term (wire.ctx);
    lp_client_destroy (&client);
    printf ("replay_window: OK\n");
    return 0;
}
