/*  =========================================================================
    lp_fetch - results by id, history, purge and resubmit: the task store's
    requests on the query (registration) channel, served on the hub's
    thread (docs/protocol.md, "Task store queries").

        fetch_request    {msg_ids}      -> fetch_reply {records: [{msg_id,
                                           kind, state, engines}]}
        result_request   {msg_ids}      -> each stored reply again (parent =
                                           the original request), at once
                                           when final, else when it ends;
                                           then result_reply {pending, unknown}
        history_request  {status, engine, since, until, limit}
                                        -> history_reply {records}
        purge_request    {before}       -> purge_reply {removed}
        resubmit_request {msg_ids}      -> resubmit_reply {msg_ids: new ids}

    Without a store (lpcontroller --no-db) each is answered with an error.
    =========================================================================
*/
#ifndef LP_FETCH_H_INCLUDED
#define LP_FETCH_H_INCLUDED

#include "lp_store.h"
#include "lp_msg.h"

typedef struct _lp_fetch_t lp_fetch_t;

//  store may be NULL (store off). registration is the hub's ROUTER (only
//  written to here); the readers this needs are added to loop. The
//  endpoints are the client sides of the task scheduler and the mux, for
//  resubmission.
lp_fetch_t *lp_fetch_new (lp_store_t *store, lp_wire_t *wire, zsock_t *registration,
                          zloop_t *loop, const char *task_endpoint, const char *mux_endpoint);
void        lp_fetch_destroy (lp_fetch_t **self_p);
//  Serves msg when it is one of the requests above (true); msg is not
//  taken.
bool        lp_fetch_handle (lp_fetch_t *self, lp_msg_t *msg);

#endif
