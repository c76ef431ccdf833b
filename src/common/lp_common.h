/*  =========================================================================
    lp_common.h - private umbrella header of src/common

    src/common is shared by controller, engine and client; it knows no
    process. It holds:
      lp_value   value trees (public API in luaparallel.h)
      lp_codec   value <-> msgpack, large payloads as separate frames
      lp_msg     one protocol message (header, parent, metadata, content)
      lp_wire    signing, verification, re-signing, drop accounting
      lp_guard   replay guard (by time for the controller, by count else)
      lp_proto   message types, header fields, frame positions
      lp_conn    connection files (JSON through jansson)
      lp_util    ids, UTF-8 check, clocks, profile paths
      lp_luavalue Lua <-> lp_value, and the lp.array userdata
    Logging is czmq's zsys_* (zsys_error, zsys_warning, zsys_info).
    Every class has a self-test lp_<class>_test(bool verbose), run by
    lp_selftest.
    =========================================================================
*/
#ifndef LP_COMMON_H_INCLUDED
#define LP_COMMON_H_INCLUDED

//  Assertions document contracts: kept in release builds too (as czmq does).
#undef NDEBUG
#include <assert.h>
#include <czmq.h>
#include <msgpack.h>
#include "luaparallel.h"
#include "lp_defaults.h"
#include "lp_proto.h"

//  ---------------------------------------------------------------------
//  lp_util

#define LP_ID_CHARS 32                  //  hex chars of a random id
//  Fills out with 32 random hex chars and a NUL (libsodium randombytes).
void    lp_util_random_id (char out[LP_ID_CHARS + 1]);
bool    lp_util_utf8_valid (const char *s, size_t len);
//  ISO 8601 UTC with microseconds: "2026-11-29T06:27:42.123456Z".
void    lp_util_iso_now (char out[32]);
int64_t lp_util_wall_usec (void);       //  microseconds since the epoch
//  Parses such a date ("Z" or "+00:00", 0..9 fraction digits) into
//  microseconds since the epoch. 0, or -1 when malformed.
int     lp_util_iso_parse (const char *date, int64_t *usec_p);
//  Profile folder: $LP_HOME/profile_<name>, else ~/.luaparallel/profile_<name>.
//  Returns 0, or -1 when it does not fit.
int     lp_util_profile_dir (const char *profile, char *out, size_t size);
//  Hex encode / decode; decode returns bytes written or -1 on bad input.
void    lp_util_hex_encode (const uint8_t *data, size_t len, char *out);
int     lp_util_hex_decode (const char *hex, uint8_t *out, size_t max);
void    lp_util_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_codec: lp_value_t <-> msgpack
//
//  Integers are int64, numbers float64, strings str, bytes bin. Strings
//  and bytes longer than LP_INLINE_MAX_BYTES and all typed arrays go out
//  of band: the msgpack holds an ext (type 1 typed array, type 2 string)
//  whose 16-byte payload is big-endian u8 dtype, u8 flags, u16 0, u32
//  first buffer index, u32 piece count, u32 0 -- then the data follows as
//  `pieces` frames of at most LP_PIECE_BYTES each. flags bit 0: a typed
//  array that is a plain sequence, a string that is text (str). See
//  docs/protocol.md.

#define LP_EXT_TYPED  1
#define LP_EXT_BYTES  2

//  Encodes value as one msgpack frame; out-of-band data appended to
//  buffers (zframe_t *, indices continue from zlist_size(buffers)).
//  Returns NULL and fills err on failure (nesting too deep, out of memory).
zframe_t   *lp_codec_encode (const lp_value_t *value, zlist_t *buffers,
                             char *err, size_t errlen);
//  Same, for a value the caller destroys right after (and does not read):
//  the pages of its large buffers are released as they are copied into
//  frames, so the value and its frames never both hold the whole data.
zframe_t   *lp_codec_encode_consume (lp_value_t *value, zlist_t *buffers,
                                     char *err, size_t errlen);
//  Same, for a value the caller destroys right after, without copying its
//  large buffers: pieces gets lp_piece_t * that point into them. Each
//  buffer the value owns is taken from it (the value holds nil there) and
//  freed when its last piece is destroyed, from any thread (lp_piece_free
//  is a zmq_free_fn for zmq_msg_init_data, hint = the piece's hold); a
//  buffer the value does not own is copied once.
typedef struct _lp_hold_t lp_hold_t;
typedef struct {
    const void *data;                   //  the piece's bytes
    size_t size;                        //  at most LP_PIECE_BYTES
    lp_hold_t *hold;                    //  keeps them alive
} lp_piece_t;
zframe_t   *lp_codec_encode_refer (lp_value_t *value, zlist_t *pieces,
                                   char *err, size_t errlen);
//  Drops the piece's reference to its buffer and frees the piece.
void        lp_piece_destroy (lp_piece_t **self_p);
//  Drops one reference to hint (an lp_hold_t); data is not used.
void        lp_piece_free (void *data, void *hint);
//  Decodes one frame. buffers/nbuffers are the message's buffer frames.
//  Checks declared counts against the bytes left before msgpack-c
//  allocates, requires exactly one object filling the frame, and a depth
//  of at most 32. Returns NULL and fills err when malformed.
lp_value_t *lp_codec_decode (const void *data, size_t size,
                             zframe_t **buffers, size_t nbuffers,
                             char *err, size_t errlen);
//  Out-of-band strings (typed arrays that are not sequences) are decoded
//  into malloc'd blocks with str_head (typed_head) bytes of room before
//  the data, so that a Lua string (lp.array) can adopt the block as it is
//  (lp_lua_enable_adoption sets this; process-wide, set it before any
//  decoding and never change it afterwards). Default 0 and 0.
void        lp_codec_set_headroom (size_t str_head, size_t typed_head);
//  Frees a typed array's data decoded with typed_head bytes before it.
void        lp_codec_free_typed_block (void *data);
void        lp_codec_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_msg: one message. The header is built by lp_msg_new:
//  {msg_id, msg_type, session, username, date, version}.

typedef struct _lp_msg_t lp_msg_t;

lp_msg_t   *lp_msg_new (const char *msg_type);
//  New message whose parent_header is a copy of request's header and
//  whose routing envelope is a copy of request's.
lp_msg_t   *lp_msg_new_reply (const lp_msg_t *request, const char *msg_type);
//  Message with an empty header map (for decoders that set the header).
lp_msg_t   *lp_msg_new_empty (void);
void        lp_msg_destroy (lp_msg_t **self_p);
const char *lp_msg_type (const lp_msg_t *self);
const char *lp_msg_id (const lp_msg_t *self);
const char *lp_msg_parent_id (const lp_msg_t *self);      //  NULL when none
const char *lp_msg_parent_type (const lp_msg_t *self);    //  NULL when none
lp_value_t *lp_msg_header (lp_msg_t *self);               //  maps, never NULL,
lp_value_t *lp_msg_parent (lp_msg_t *self);               //  owned by the msg,
lp_value_t *lp_msg_metadata (lp_msg_t *self);             //  may be modified
lp_value_t *lp_msg_content (lp_msg_t *self);
void        lp_msg_set_content (lp_msg_t *self, lp_value_t *content);  //  taken
void        lp_msg_set_header (lp_msg_t *self, lp_value_t *header);    //  taken
void        lp_msg_set_parent (lp_msg_t *self, lp_value_t *parent);    //  taken
void        lp_msg_set_metadata (lp_msg_t *self, lp_value_t *metadata);//  taken
//  Routing envelope (identity frames before the delimiter); never NULL.
zmsg_t     *lp_msg_routing (lp_msg_t *self);
void        lp_msg_set_routing (lp_msg_t *self, zmsg_t **routing_p);  //  taken
//  Shorthands for content fields; NULL / fallback when absent or mistyped.
const char *lp_msg_get_string (lp_msg_t *self, const char *key);
int64_t     lp_msg_get_int (lp_msg_t *self, const char *key, int64_t fallback);
void        lp_msg_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_guard: replay guard (docs/protocol.md, "Replays"). Thread-safe: the
//  controller creates ONE, lp_guard_new (lp_guard_window_default (),
//  LP_REPLAY_MAX_IDS), and sets it on the wire of every actor
//  (lp_wire_set_guard), so a msg_id seen on any channel is a replay. It
//  must outlive those wires. Engines and clients keep their wire's own
//  guard (by count, LP_REPLAY_WINDOW ids, no date check).

typedef struct _lp_guard_t lp_guard_t;

//  window_msec > 0: by time -- a header date more than window_msec in the
//  past or the future (or missing) is refused, ids are remembered until
//  their date + window, and past max_ids ids new ones are refused (and
//  counted). window_msec == 0: by count -- the last max_ids ids, no date
//  check. NULL when max_ids is 0 or out of memory.
lp_guard_t *lp_guard_new (int64_t window_msec, size_t max_ids);
void        lp_guard_destroy (lp_guard_t **self_p);
//  $LP_REPLAY_WINDOW_MSEC when a positive integer, else
//  LP_REPLAY_WINDOW_MSEC (lpcontroller --replay-window sets the variable).
int64_t     lp_guard_window_default (void);
//  Atomically checks and remembers msg_id (date: the header's, may be
//  NULL). 0 when admitted; when refused, a negative lp_guard_refusal_t
//  and reason says why ("replayed msg_id ...", "date ... older than the
//  replay window", "... in the future", "header has no valid date",
//  "replay guard full").
typedef enum {
    LP_GUARD_REPLAY = -1,               //  msg_id seen before
    LP_GUARD_DATE = -2,                 //  date missing or outside the window
    LP_GUARD_FULL = -3                  //  hard cap reached (or out of memory)
} lp_guard_refusal_t;
int         lp_guard_admit (lp_guard_t *self, const char *msg_id, const char *date,
                            char *reason, size_t reasonlen);
//  Forgets an admitted id (its message was then found malformed).
void        lp_guard_forget (lp_guard_t *self, const char *msg_id);
size_t      lp_guard_size (lp_guard_t *self);           //  ids remembered
uint64_t    lp_guard_refused (lp_guard_t *self);        //  refused so far
uint64_t    lp_guard_refused_full (lp_guard_t *self);   //  ... because full
int64_t     lp_guard_window_msec (lp_guard_t *self);    //  0: by count
void        lp_guard_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_wire: turns messages into signed multipart ZeroMQ messages and back.
//  One instance per thread (not thread-safe). Drops are counted and
//  logged through zsys_warning at most once per peer per LP_DROP_LOG_MSEC.

typedef struct _lp_wire_t lp_wire_t;

//  name appears in log lines ("controller/mux", "engine 3").
lp_wire_t  *lp_wire_new (const uint8_t *key, size_t key_len, const char *name);
void        lp_wire_destroy (lp_wire_t **self_p);
//  Session id stamped into headers of messages this wire sends.
const char *lp_wire_session (lp_wire_t *self);
//  Signed multipart message; the msg is destroyed; NULL on encoding error
//  (err filled).
zmsg_t     *lp_wire_encode (lp_wire_t *self, lp_msg_t **msg_p, char *err, size_t errlen);
//  The same, with the message's large buffers not copied but referred to
//  (taken from the msg's values, freed once ZeroMQ has sent them), for a
//  message sent at once with lp_wire_out_send; NULL on encoding error.
typedef struct _lp_wire_out_t lp_wire_out_t;
lp_wire_out_t *lp_wire_encode_out (lp_wire_t *self, lp_msg_t **msg_p,
                                   char *err, size_t errlen);
//  Size of its biggest frame in bytes (for the frame cap).
size_t      lp_wire_out_largest (lp_wire_out_t *self);
//  Sends it on sock (zero-copy for the buffers) and destroys it; 0, or -1
//  when ZeroMQ refused it (errno set; nothing sent: only the first frame
//  of a message can be refused).
int         lp_wire_out_send (lp_wire_out_t **self_p, zsock_t *sock);
void        lp_wire_out_destroy (lp_wire_out_t **self_p);
//  Encodes and sends (as lp_wire_out_send); 0, or -1 (msg destroyed in
//  both cases).
int         lp_wire_send (lp_wire_t *self, lp_msg_t **msg_p, zsock_t *sock);
//  Verifies, checks replay, decodes. The zmsg is destroyed. NULL when the
//  message was dropped (see lp_wire_dropped / lp_wire_last_error).
lp_msg_t   *lp_wire_decode (lp_wire_t *self, zmsg_t **zmsg_p);
//  Receives one message from sock and decodes it; NULL when dropped or
//  interrupted.
lp_msg_t   *lp_wire_recv (lp_wire_t *self, zsock_t *sock);
//  A receiver that answers every request whose header verified (the
//  engine, "always answer" in protocol.md): as lp_wire_decode, except that
//  once the header is verified and its msg_id admitted, buffers or maps
//  that fail do not drop the message: they come back as empty maps and
//  problem says why ("" for a message that decoded whole).
lp_msg_t   *lp_wire_decode_request (lp_wire_t *self, zmsg_t **zmsg_p,
                                    char *problem, size_t size);
lp_msg_t   *lp_wire_recv_request (lp_wire_t *self, zsock_t *sock,
                                  char *problem, size_t size);
//  For forwarders: verifies the signature of zmsg in place (nothing
//  decoded but the header) and checks replay. Returns the decoded header
//  (caller destroys) and sets *delim_p to the delimiter's frame index; NULL
//  when dropped.
lp_value_t *lp_wire_verify (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p);
//  The same without the replay guard, for replies a forwarder matches to
//  its request record (a replayed reply finds no record and is dropped):
//  the guard then holds only requests, not twice as many ids.
lp_value_t *lp_wire_verify_reply (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p);
uint64_t    lp_wire_dropped (lp_wire_t *self);
//  Why the last message was dropped, for forwarders that answer what they
//  refuse (Invariant 1: a request whose signed header was read ends with a
//  reply). A signed request refused for its date (it may have waited in a
//  queue past the window) or because the guard is full is not a replay:
//  its sender should get an error reply. After such a drop,
//  lp_wire_take_refused returns its verified header (caller destroys; NULL
//  after any other drop or when taken) and *delim_p its delimiter index;
//  the zmsg given to lp_wire_verify is still the caller's, for routing.
typedef enum {
    LP_DROP_NONE = 0,                   //  nothing dropped yet
    LP_DROP_MALFORMED,                  //  framing, header, maps
    LP_DROP_SIGNATURE,                  //  bad or missing signature
    LP_DROP_REPLAY,                     //  msg_id seen before
    LP_DROP_DATE,                       //  date outside the replay window
    LP_DROP_FULL                        //  replay guard full
} lp_drop_t;
lp_drop_t   lp_wire_last_drop (lp_wire_t *self);
lp_value_t *lp_wire_take_refused (lp_wire_t *self, size_t *delim_p);
//  Replay guard: each wire has its own (by count, no date check). The
//  controller sets its one shared guard by time on every actor's wire;
//  guard is not taken and must outlive the wire. NULL: back to the own.
void        lp_wire_set_guard (lp_wire_t *self, lp_guard_t *guard);
lp_guard_t *lp_wire_guard (lp_wire_t *self);            //  the one in use
//  Forwarders. zmsg is a whole message whose delimiter is frame delim
//  (from lp_wire_verify); frames are named by LP_FRAME_* (lp_proto.h).
//  Recomputes the signature frame over every frame after it (after the
//  caller changed header, parent, metadata, content or buffers). 0, or -1
//  when delim is not the delimiter, too few frames, or out of memory.
int         lp_wire_resign (lp_wire_t *self, zmsg_t *zmsg, size_t delim);
//  Decodes one map frame (LP_FRAME_HEADER .. LP_FRAME_CONTENT) with the
//  same checks as lp_wire_decode. NULL and err filled when malformed.
lp_value_t *lp_wire_decode_frame (zmsg_t *zmsg, size_t delim, size_t which,
                                  char *err, size_t errlen);
//  The parent_header map (for matching a reply by its parent msg_id:
//  lp_wire_map_string (parent, LP_HDR_MSG_ID)); caller destroys; NULL and
//  err filled when malformed.
lp_value_t *lp_wire_parent (zmsg_t *zmsg, size_t delim, char *err, size_t errlen);
//  The string at key of a map, NULL when absent, not a string or no map.
const char *lp_wire_map_string (const lp_value_t *map, const char *key);
//  Replaces map frame `which` by map encoded (it must need no buffers:
//  headers and parents never do) and re-signs. 0, or -1 (nothing changed
//  unless the re-signing ran out of memory).
int         lp_wire_replace (lp_wire_t *self, zmsg_t *zmsg, size_t delim, size_t which,
                             const lp_value_t *map);
const char *lp_wire_last_error (lp_wire_t *self);        //  why the last drop
//  Sets ZMQ_MAXMSGSIZE and linger on a socket this process owns.
void        lp_wire_tune_socket (zsock_t *sock);
//  Tunes sock and binds it to a free TCP port on ip; writes
//  "tcp://ip:port" into endpoint. 0, or -1 (sock NULL or bind failed).
int         lp_wire_bind (zsock_t *sock, const char *ip, char *endpoint, size_t size);
void        lp_wire_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_conn: a connection file.
//  {"version":"1.0","kind":"engine"|"client","signature_scheme":
//   "blake2b-256","key":"<hex>","location":"127.0.0.1",
//   "endpoints":{"registration":"tcp://127.0.0.1:40001", ...}}

typedef struct _lp_conn_t lp_conn_t;

lp_conn_t  *lp_conn_new (const char *kind);
void        lp_conn_destroy (lp_conn_t **self_p);
//  Loads and checks a file; on failure NULL and err = "<path>: <problem>".
lp_conn_t  *lp_conn_load (const char *path, char *err, size_t errlen);
//  Writes atomically (temporary file + rename), mode 0600. 0 / -1 + err.
int         lp_conn_save (lp_conn_t *self, const char *path, char *err, size_t errlen);
const char *lp_conn_kind (lp_conn_t *self);
const char *lp_conn_endpoint (lp_conn_t *self, const char *channel);  //  NULL if absent
void        lp_conn_set_endpoint (lp_conn_t *self, const char *channel, const char *endpoint);
const uint8_t *lp_conn_key (lp_conn_t *self, size_t *len_p);
void        lp_conn_set_key (lp_conn_t *self, const uint8_t *key, size_t len);
const char *lp_conn_location (lp_conn_t *self);
void        lp_conn_set_location (lp_conn_t *self, const char *location);
void        lp_conn_test (bool verbose);

//  ---------------------------------------------------------------------
//  lp_luavalue: Lua <-> lp_value_t (used by the engine and the Lua module)

#include <lua.h>

#define LP_ARRAY_MT "lp.array"

//  Pushes v onto L; typed arrays become lp.array userdata (copying the
//  data). May raise a Lua memory error: call in protected mode.
void        lp_lua_push_value (lua_State *L, const lp_value_t *v);
//  The same for a value read once: its large strings and lp.arrays that
//  lp_codec decoded with headroom become Lua objects without a copy (the
//  value keeps nil in their place). Needs lp_lua_enable_adoption.
void        lp_lua_push_value_take (lua_State *L, lp_value_t *v);
//  Measures where Lua 5.4 puts a long string's bytes and an lp.array's
//  elements in their allocations and sets lp_codec_set_headroom to match,
//  so later pushes with _take adopt decoded blocks. The state's allocator
//  must accept (block, osize 0, nsize) as taking over a malloc'd block of
//  nsize bytes and return it unchanged (lp_engine's does). Process-wide;
//  call once, before anything is decoded. 0 (adoption off when the
//  layout is not the expected one), -1 when the stack is full.
int         lp_lua_enable_adoption (lua_State *L);
//  Where a long string's bytes start in its allocation, as measured by
//  lp_lua_enable_adoption (0 before, or when not measurable).
size_t      lp_lua_string_head (void);
//  Borrowing: lp_lua_to_value asks fn about every string over
//  LP_INLINE_MAX_BYTES; when fn returns true the value points into the
//  Lua string instead of copying it, and release (arg), from any thread,
//  says the value is done with it. fn must keep the string's memory valid
//  until then, even if Lua frees it (lp_engine defers such frees in its
//  allocator). Per state (kept in its registry; may raise a memory
//  error); without one (the default) strings are copied.
typedef bool (lp_lua_borrow_fn) (void *ud, const char *data, size_t len,
                                 void (**release_p) (void *), void **arg_p);
void        lp_lua_set_borrower (lua_State *L, lp_lua_borrow_fn *fn, void *ud);
//  Converts the value at idx. On failure returns NULL and err says what and
//  where, e.g. "cannot send a function (at t.handlers[2])". path_root
//  names the value in that message ("result", "x"). Never raises except
//  on memory errors.
lp_value_t *lp_lua_to_value (lua_State *L, int idx, const char *path_root,
                             char *err, size_t errlen);
//  LP_DTYPE_I64 (LP_DTYPE_F64) when the value at idx is a table that
//  lp_lua_to_value sends as a typed sequence: keys exactly 1..n, n greater
//  than LP_SEQUENCE_TYPED_MIN, values all integers (all floats); else 0.
//  Its encoded size is then one ext, whatever n. Never raises.
lp_dtype_t  lp_lua_sequence_dtype (lua_State *L, int idx);
//  Opens the lp.array type; pushes a table {new=, from=, ...}, see
//  docs/api.md (lp.array(dtype, n | table)).
int         lp_lua_open_array (lua_State *L);
void        lp_luavalue_test (bool verbose);

//  Takes the value of key out of a map without copying it (the map keeps
//  nil in its place); NULL when absent or out of memory. Caller owns it.
lp_value_t *lp_value_take (lp_value_t *self, const char *key);

//  String (type LP_STRING) or bytes (LP_BYTES) that takes data, a malloc'd
//  block of at least len + 1 bytes (data[len] is set to 0); data is freed
//  on failure too. NULL when out of memory.
lp_value_t *lp_value_str_take (lp_type_t type, char *data, size_t len);
//  The same for a malloc'd block of at least head + len + 1 bytes whose
//  data starts head bytes in (lp_codec leaves room there for the header
//  of the Lua string that will adopt the block, see lp_lua_push_value_take).
lp_value_t *lp_value_str_take_head (lp_type_t type, char *block, size_t head, size_t len);
//  A string or bytes that borrows data (NUL-terminated at len), for
//  instance a Lua string's bytes: release (arg) is called, from any
//  thread, when the value (or what it was detached into) is done with it.
//  NULL when out of memory (release is not called then).
lp_value_t *lp_value_str_borrow (lp_type_t type, const char *data, size_t len,
                                 void (*release) (void *), void *arg);
//  True for a string or bytes that owns a block starting head bytes
//  before its data (lp_value_str_take_head), not borrowed.
bool        lp_value_str_has_head (const lp_value_t *self, size_t head);
//  True for a string or bytes made by lp_value_str_borrow.
bool        lp_value_str_borrowed (const lp_value_t *self);
//  Gives up what a string, bytes or typed array would free when destroyed
//  and returns it, with the function that frees it in *free_fn_p (when
//  not NULL): a string's malloc'd block (head bytes before the data) and
//  free, a borrowed string's release argument and release, a typed
//  array's buffer and its free function. The value becomes nil. NULL
//  (value unchanged) for other values and typed arrays without one.
void       *lp_value_detach (lp_value_t *self, void (**free_fn_p) (void *));
//  True when the typed array's buffer is freed with free_fn.
bool        lp_value_typed_freed_by (const lp_value_t *self, void (*free_fn) (void *));

//  True when the typed array's buffer is the value's own (lp_value_typed,
//  or lp_value_typed_take with free), so it may be released early.
bool        lp_value_typed_owned (const lp_value_t *self);

//  lp_value test lives with lp_value.c
void        lp_value_test (bool verbose);

#endif
