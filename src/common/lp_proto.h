/*  =========================================================================
    lp_proto - the protocol's names and positions, in one place

    Message types, header and metadata field names, the frame positions of
    a message relative to its delimiter, and the request -> reply type
    mapping. docs/protocol.md is the prose; this file is what the code
    uses, so that no other file spells a message type or counts frames.
    (Adopted by src/common; the other parts of the tree move to it as they
    are touched.)
    =========================================================================
*/
#ifndef LP_PROTO_H_INCLUDED
#define LP_PROTO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "luaparallel.h"

//  ---------------------------------------------------------------------
//  Frames, counted from the delimiter frame (index delim in the zmsg):
//  [routing...] | "<LPMSG>" | signature | header | parent | metadata |
//  content | buffer 0 | buffer 1 ...

#define LP_FRAME_DELIMITER      0       //  "<LPMSG>"
#define LP_FRAME_SIGNATURE      1       //  64 hex chars (+ digest block)
#define LP_FRAME_HEADER         2       //  first signed frame
#define LP_FRAME_PARENT         3       //  parent_header map
#define LP_FRAME_METADATA       4
#define LP_FRAME_CONTENT        5
#define LP_FRAME_BUFFERS        6       //  first out-of-band buffer
#define LP_FRAMES_MIN           6       //  delimiter .. content
#define LP_DELIMITER            "<LPMSG>"

//  Heartbeat ping and pong (hb_ping PUB -> engine -> hb_pong): one frame
//  of 12 bytes, "LPHB" then the ping's sequence number, 8 bytes big-endian;
//  the engine answers with the same 12 bytes, optionally followed by its
//  resident set size in bytes (u64 big-endian; 20 bytes in all).
#define LP_HB_BYTES             12
#define LP_PONG_BYTES           20
void    lp_proto_ping_encode (uint8_t out [LP_HB_BYTES], uint64_t seq);
//  True when data is a ping; its sequence number in *seq_p.
bool    lp_proto_ping_decode (const uint8_t *data, size_t size, uint64_t *seq_p);
//  A pong: the ping's 12 bytes and rss (bytes, 0 when unknown).
void    lp_proto_pong_encode (uint8_t out [LP_PONG_BYTES], uint64_t seq, uint64_t rss);
//  True when data is a pong of 12 (*rss_p = 0: not told) or 20 bytes.
bool    lp_proto_pong_decode (const uint8_t *data, size_t size, uint64_t *seq_p,
                              uint64_t *rss_p);
//  The signature frame: 64 hex chars, then (when buffers follow) the hex of
//  the digest block: a nonce, then a Poly1305 tag per buffer, keyed by
//  BLAKE2b (personal LP_DIGEST_PERSONAL) of nonce + buffer index.
#define LP_DIGEST_NONCE_BYTES   16
#define LP_DIGEST_TAG_BYTES     16      //  crypto_onetimeauth_BYTES
#define LP_DIGEST_PERSONAL      "lp-buffer-key"

//  ---------------------------------------------------------------------
//  Header fields

#define LP_HDR_MSG_ID           "msg_id"
#define LP_HDR_MSG_TYPE         "msg_type"
#define LP_HDR_SESSION          "session"
#define LP_HDR_USERNAME         "username"
#define LP_HDR_DATE             "date"
#define LP_HDR_VERSION          "version"
#define LP_HDR_TARGETS          "targets"
//  task scheduling flags (docs/scheduling.md)
#define LP_HDR_RETRIES          "retries"
#define LP_HDR_TIMEOUT          "timeout"
#define LP_HDR_TIME_LIMIT       "time_limit"
#define LP_HDR_AFTER            "after"
#define LP_HDR_FOLLOW           "follow"
#define LP_HDR_SUCCESS          "success"
#define LP_HDR_FAILURE          "failure"
//  set by the scheduler on a retry attempt: the msg_id the client sent
#define LP_HDR_TASK_ID          "task_id"

//  Metadata fields of a reply
#define LP_META_ENGINE          "engine"
#define LP_META_STATUS          "status"
#define LP_META_ENAME           "ename"
#define LP_META_STARTED         "started"
#define LP_META_COMPLETED       "completed"
#define LP_META_STDOUT          "stdout"

//  Content fields every reply has
#define LP_CONTENT_STATUS       "status"
#define LP_CONTENT_ENAME        "ename"
#define LP_CONTENT_EVALUE       "evalue"
#define LP_CONTENT_TRACEBACK    "traceback"
#define LP_STATUS_OK            "ok"
#define LP_STATUS_ERROR         "error"

//  map_request content: true when each item is an array of the
//  arguments of one call (a map over several sequences)
#define LP_MAP_STAR             "star"

//  ---------------------------------------------------------------------
//  Message types

//  requests served by engines (mux and task channels)
#define LP_EXECUTE_REQUEST      "execute_request"
#define LP_APPLY_REQUEST        "apply_request"
#define LP_MAP_REQUEST          "map_request"
#define LP_PUSH_REQUEST         "push_request"
#define LP_PULL_REQUEST         "pull_request"
#define LP_CLEAR_REQUEST        "clear_request"
#define LP_EXECUTE_REPLY        "execute_reply"
#define LP_APPLY_REPLY          "apply_reply"
#define LP_MAP_REPLY            "map_reply"
#define LP_PUSH_REPLY           "push_reply"
#define LP_PULL_REPLY           "pull_reply"
#define LP_CLEAR_REPLY          "clear_reply"
//  control channel (and abort on the task channel)
#define LP_INTERRUPT_REQUEST    "interrupt_request"
#define LP_INTERRUPT_REPLY      "interrupt_reply"
#define LP_SHUTDOWN_REQUEST     "shutdown_request"
#define LP_SHUTDOWN_REPLY       "shutdown_reply"
#define LP_ABORT_REQUEST        "abort_request"
#define LP_ABORT_REPLY          "abort_reply"
//  registration channel
#define LP_REGISTRATION_REQUEST "registration_request"
#define LP_REGISTRATION_REPLY   "registration_reply"
#define LP_UNREGISTRATION_REQUEST "unregistration_request"
#define LP_STATUS_REQUEST       "status_request"
#define LP_STATUS_REPLY         "status_reply"
#define LP_ENGINE_HELLO         "engine_hello"
//  registration channel: the task store (docs/protocol.md, "Task store queries")
#define LP_FETCH_REQUEST        "fetch_request"
#define LP_FETCH_REPLY          "fetch_reply"
#define LP_RESULT_REQUEST       "result_request"
#define LP_RESULT_REPLY         "result_reply"
#define LP_HISTORY_REQUEST      "history_request"
#define LP_HISTORY_REPLY        "history_reply"
#define LP_PURGE_REQUEST        "purge_request"
#define LP_PURGE_REPLY          "purge_reply"
#define LP_RESUBMIT_REQUEST     "resubmit_request"
#define LP_RESUBMIT_REPLY       "resubmit_reply"
//  registration channel: restart one local engine (docs/protocol.md)
#define LP_RESTART_REQUEST      "restart_request"
#define LP_RESTART_REPLY        "restart_reply"
//  iopub and notification
#define LP_STREAM               "stream"
#define LP_ENGINE_REGISTERED    "engine_registered"
#define LP_ENGINE_UNREGISTERED  "engine_unregistered"
#define LP_CONTROLLER_HEARTBEAT "controller_heartbeat"
//  a reply to a request of a type nobody knows
#define LP_ERROR_REPLY          "error_reply"

//  Error names (ename) the protocol defines
#define LP_ENAME_PROTOCOL       "ProtocolError"
#define LP_ENAME_SERIALIZATION  "SerializationError"
#define LP_ENAME_ENGINE         "EngineError"
#define LP_ENAME_TIME_LIMIT     "TimeLimit"
#define LP_ENAME_WALLTIME       "WalltimeExceeded"    //  time_limit past the
                                                    //  engine's batch job end
#define LP_ENAME_TIMEOUT        "TimeoutError"
#define LP_ENAME_DEPENDENCY     "DependencyError"
#define LP_ENAME_ABORTED        "Aborted"
#define LP_ENAME_MEMORY         "MemoryError"
#define LP_ENAME_INTERRUPTED    "Interrupted"
#define LP_ENAME_CONTROLLER_LOST "ControllerLost"
#define LP_ENAME_UNKNOWN_REQUEST "UnknownRequest"     //  no record of that msg_id
#define LP_ENAME_CONTROLLER_RESTARTED "ControllerRestarted" //  unfinished when the
                                                    //  controller died (--restore)
#define LP_ENAME_STORE          "StoreError"          //  store off or failing
#define LP_ENAME_TOO_LARGE      "ResultTooLarge"      //  not kept by the store

//  ---------------------------------------------------------------------
//  Doctor (./cluster.sh doctor, src/tools/lpdoctor.c): the facts an engine
//  tells about itself. lpdoctor executes LP_DOCTOR_CODE on one engine at
//  a time (a direct execute_request, so no new message type); the engine's
//  lp.facts () returns the map lp_proto_facts builds, with these keys:
#define LP_DOCTOR_CODE          "return lp.facts ()"
#define LP_FACT_ID              "id"            //  int: lp.id
#define LP_FACT_HOST            "host"          //  string: gethostname
#define LP_FACT_PID             "pid"           //  int
#define LP_FACT_USER            "user"          //  string: login name
#define LP_FACT_CWD             "cwd"           //  string: working directory
#define LP_FACT_LUA             "lua_version"   //  string: LUA_RELEASE
#define LP_FACT_VERSION         "version"       //  string: LP_VERSION_STRING
#define LP_FACT_PROTOCOL        "protocol"      //  string: LP_PROTOCOL_VERSION
#define LP_FACT_MEM_FREE        "mem_free_kb"   //  int: MemAvailable of /proc/meminfo
#define LP_FACT_LOAD            "load1"         //  float: 1-minute load average
#define LP_FACT_CLOCK           "clock_us"      //  int: wall clock, us since the epoch
#define LP_FACT_CALIBRATION     "calibration_us" //  int: wall time of a fixed loop

//  ---------------------------------------------------------------------
//  Functions

//  The reply type of a request type: "execute_request" -> "execute_reply"
//  (any "<x>_request" -> "<x>_reply"), written into out. Returns out, or
//  LP_ERROR_REPLY when type is NULL, not "<x>_request", or does not fit.
const char *lp_proto_reply_type (const char *request_type, char *out, size_t size);
//  True for the requests an engine serves on mux and task channels
//  (execute, apply, map, push, pull, clear).
bool        lp_proto_is_engine_request (const char *msg_type);
//  True when msg_type ends in "_request".
bool        lp_proto_is_request (const char *msg_type);
//  The facts of this process and host (keys above; the caller adds
//  LP_FACT_ID and LP_FACT_LUA). Runs the calibration loop (a few ms).
//  NULL when out of memory.
//  Sets this process's host, pid, user and cwd (LP_FACT_* keys) into map:
//  the registration's and lp.facts ()'s. 0, or -1 out of memory.
int lp_proto_set_place (lp_value_t *map);
lp_value_t *lp_proto_facts (void);
void        lp_proto_test (bool verbose);

#endif
