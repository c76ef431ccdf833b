/*  lp_dashboard.h - the controller's web dashboard (lpcontroller
    --dashboard [ADDR:]PORT), served by libmicrohttpd on its own threads.

    Where its figures come from, and why the hub never waits on it:

        hub --(every LP_DASHBOARD_MSEC: the status map, msgpack, PUSH
               DONTWAIT)--> inproc PULL --> collector thread
        task store (SQLite, WAL) <--(its own read connection: replies
               since the last look)-- collector thread
        collector --> JSON documents, under a mutex --> HTTP threads
                      (GET /api/status, /api/state; /api/events streams
                      each new document as a Server-Sent Event)

    The status map has the shape of lp_client_queue_status; the collector
    adds the throughput history, the task stream, the recent errors (with
    their tracebacks, from the stored reply) and failures per engine.
    Without a task store (--no-db) the stream, errors and failures are
    empty and the page says why.

    Pages, script and style sheet are compiled in (src/controller/
    dashboard/, embedded at build time): nothing is loaded from elsewhere.
    With a token (a secure controller), every request must carry it:
    `Authorization: Bearer TOKEN`, the cookie lp_dashboard_token, or
    `?token=TOKEN` once (the answer sets the cookie); else 401.
*/
#ifndef LP_DASHBOARD_H_INCLUDED
#define LP_DASHBOARD_H_INCLUDED

#include "lp_prelude.h"

typedef struct _lp_dashboard_t lp_dashboard_t;

typedef struct {
    const char *address;                //  "[ADDR:]PORT"; ADDR default 127.0.0.1,
                                        //  "[::1]:PORT" for IPv6; PORT 0 = any free
    const char *store_path;             //  tasks.sqlite3, NULL without a store
    const char *token_path;             //  token file (read, or made 0600),
                                        //  NULL: no token asked
} lp_dashboard_config_t;

//  Listens and starts its threads. NULL with err.
lp_dashboard_t *lp_dashboard_new (const lp_dashboard_config_t *config, char *err, size_t errlen);
//  Stops serving (open event streams end), joins the threads.
void        lp_dashboard_destroy (lp_dashboard_t **self_p);
//  The inproc endpoint the hub pushes its snapshots to (lp_hub_config_t).
const char *lp_dashboard_endpoint (lp_dashboard_t *self);
//  "http://ADDR:PORT/" as bound (the port chosen when 0 was asked).
const char *lp_dashboard_url (lp_dashboard_t *self);
//  True when the address is loopback only.
bool        lp_dashboard_is_loopback (lp_dashboard_t *self);
void        lp_dashboard_test (bool verbose);

#endif
