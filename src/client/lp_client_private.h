/*  =========================================================================
    lp_client_private.h - internal interfaces between the client classes

    libluaparallel is three classes that share one thread:
      lp_client  sockets, the poll loop, dispatch of every incoming message
                 to the result that waits for it, the engine id cache
      lp_view    builds requests (direct views, scatter/map partitions)
      lp_result  one slot per expected reply; combines them for the caller
    The client owns a hash msg_id -> result and a list of live results and
    views; destroying the client detaches them so they fail cleanly
    instead of touching freed memory.
    =========================================================================
*/
#ifndef LP_CLIENT_PRIVATE_H_INCLUDED
#define LP_CLIENT_PRIVATE_H_INCLUDED

#include "lp_util.h"
#include "lp_msg.h"

//  Which socket a request goes out on
typedef enum {
    LP_CHANNEL_MUX = 0,
    LP_CHANNEL_CONTROL,
    LP_CHANNEL_REGISTRATION,
    LP_CHANNEL_TASK
} lp_channel_t;

//  How lp_result_get combines the slots
typedef enum {
    LP_COMBINE_EACH = 0,    //  one slot: its value; several: array of values
    LP_COMBINE_CONCAT,      //  concatenate each slot's value (gather)
    LP_COMBINE_CONCAT_VALUES, //  concatenate each slot's values array (map)
    LP_COMBINE_NONE         //  nil (push, scatter)
} lp_combine_t;

//  ---------------------------------------------------------------------
//  lp_client internals (lp_client.c)

//  Records an error on the client (and on this thread's lp_last_error).
void    lp_client_set_error (lp_client_t *self, const char *format, ...)
        __attribute__ ((format (printf, 2, 3)));
//  Records an error with its lp_err_t code.
void    lp_client_fail (lp_client_t *self, int code, const char *format, ...)
        __attribute__ ((format (printf, 3, 4)));
//  Forgets the client's last error ("" and LP_OK): every call that sends
//  or waits starts with it, so lp_client_error never outlives a later
//  success (docs/api.md, "Errors").
void    lp_client_clear_error (lp_client_t *self);
//  Sets this thread's lp_last_error text.
void    lp_set_last_error (const char *format, ...)
        __attribute__ ((format (printf, 1, 2)));
//  The cached ids of registered engines, ascending; returns the count.
int     lp_client_cached_ids (lp_client_t *self, const int **ids_p);
//  Encodes and sends msg on the channel and, when result is not NULL,
//  routes replies to its msg_id to result. msg is destroyed. The sent
//  msg_id is copied to msg_id. 0, or -1 with the client error set.
int     lp_client_send (lp_client_t *self, lp_channel_t channel, lp_msg_t **msg_p,
                        lp_result_t *result, char msg_id[LP_ID_CHARS + 1]);
//  Live-object bookkeeping
void   *lp_client_track_result (lp_client_t *self, lp_result_t *result);
void    lp_client_forget_result (lp_client_t *self, lp_result_t *result,
                                 void *handle);
void   *lp_client_track_view (lp_client_t *self, lp_view_t *view);
void    lp_client_forget_view (lp_client_t *self, void *handle);
//  Takes a task the client still holds (not sent: too many in flight)
//  out of its backlog; true when it was there (it never reaches anyone).
bool    lp_client_unhold (lp_client_t *self, const char *msg_id);
//  Stops routing replies with this msg_id to result (a later
//  lp_client_fetch of the same id may have taken the route over).
void    lp_client_unroute (lp_client_t *self, const char *msg_id, lp_result_t *result);

//  ---------------------------------------------------------------------
//  lp_result internals (lp_result.c)

lp_result_t *lp_result_new (lp_client_t *client, lp_combine_t combine);
//  Adds a slot waiting for a reply to msg_id from engine (-1: any, for
//  tasks); submitted is the request's date (ISO). 0 / -1.
int     lp_result_add_slot (lp_result_t *self, const char *msg_id, int engine);
int     lp_result_add_task_slot (lp_result_t *self, const char *msg_id, const char *submitted);
//  map: the position of the last added slot's first item in the sequence.
void    lp_result_set_first_item (lp_result_t *self, int64_t first);
//  A reply (or controller error) whose parent is one of our msg_ids.
void    lp_result_handle_reply (lp_result_t *self, lp_msg_t *msg);
//  An iopub stream message whose parent is one of our msg_ids.
void    lp_result_handle_stream (lp_result_t *self, lp_msg_t *msg);
//  The controller is lost: every pending slot ends with ControllerLost.
void    lp_result_lose (lp_result_t *self, const char *evalue);
//  True while a slot of msg_id waits for its reply.
bool    lp_result_waits_for (lp_result_t *self, const char *msg_id);
//  The client is going away: never touch it again.
void    lp_result_detach (lp_result_t *self);

//  ---------------------------------------------------------------------
//  lp_view internals (lp_view.c)

//  The views' constructor, behind lp_client_view (balanced false) and
//  lp_client_balanced (true, no targets).
lp_view_t *lp_view_new (lp_client_t *client, const int *targets, int ntargets,
                        bool balanced);
void    lp_view_detach (lp_view_t *self);
//  A request of msg_type with an empty content on the control channel to
//  every target (interrupt, shutdown). Direct views only.
lp_result_t *lp_view_control (lp_view_t *self, const char *msg_type);

#endif
