/*  lp_defaults.h - every tunable of luaparallel, with its unit in the name.
    Profiles and command-line options override the runtime ones.  */
#ifndef LP_DEFAULTS_H_INCLUDED
#define LP_DEFAULTS_H_INCLUDED

#define LP_PROTOCOL_VERSION        "1.0"
#define LP_DELIMITER               "<LPMSG>"
#define LP_SIGNATURE_SCHEME        "blake2b-256"
#define LP_KEY_BYTES               32          //  random key per cluster
#define LP_SIGNATURE_HEX_CHARS     64          //  keyed BLAKE2b-256 as hex

#define LP_HEARTBEAT_MSEC          1000        //  ping period
#define LP_HEARTBEAT_MAX_MISSES    3           //  pings missed before dead
#define LP_HEARTBEAT_CHECK_DIV     4           //  liveness checked period/DIV
#define LP_HEARTBEAT_MAX_FRAME     256         //  bytes; pings and pongs are 12
#define LP_RECONNECT_MIN_MSEC      500         //  engine backoff start
#define LP_RECONNECT_MAX_MSEC      32000       //  engine backoff cap

#define LP_MAX_FRAME_BYTES         (128 * 1024 * 1024)  //  ZMQ_MAXMSGSIZE
#define LP_PIECE_BYTES             (1024 * 1024)        //  large values split so
#define LP_INLINE_MAX_BYTES        (64 * 1024)          //  bytes above go out of band
#define LP_HUGE_ADVISE_BYTES       (4 * 1024 * 1024)    //  decoded blocks above: THP advice
#define LP_SEQUENCE_TYPED_MIN      4096        //  Lua sequences of numbers above go typed
#define LP_VALUE_MAX_DEPTH         24          //  user value nesting (msgpack-c stops at 32)
#define LP_REPLAY_WINDOW           65536       //  msg_ids remembered by an engine / client
#define LP_REPLAY_WINDOW_MSEC      60000       //  controller: header dates within +-this
#define LP_REPLAY_MAX_IDS          2000000     //  controller: hard cap, then refused
#define LP_DROP_LOG_MSEC           60000       //  drop log: once per peer per minute

#define LP_LISTEN_BACKLOG          4096        //  pending TCP connections per port
#define LP_DRAIN_BATCH             256         //  messages handled per wake-up
#define LP_TASK_HWM                2           //  tasks outstanding per engine

#define LP_REGISTER_TIMEOUT_MSEC   5000        //  engine registration deadline
#define LP_CONNECT_TIMEOUT_MSEC    5000        //  client connect default
#define LP_CLIENT_LOST_AFTER_MSEC  3000        //  client: controller silent this long is lost
#define LP_CLIENT_ABORT_MSEC       5000        //  client: wait for abort replies
#define LP_LUA_WAIT_MSEC           3600000     //  Lua/lpsh blocking call default deadline
#define LP_SHUTDOWN_GRACE_MSEC     2000        //  before SIGKILL of local engines
#define LP_ENGINE_LOST_EXIT_MSEC   30000       //  local engines exit when the controller is gone this long
#define LP_STUCK_GRACE_MSEC        5000        //  engine: past time_limit / interrupt, then exit
#define LP_EXIT_STUCK              75          //  engine exit status: request stuck in a C call
#define LP_ENGINE_MEMORY_SHARE     50          //  engine: default cap, % of physical memory / -n

#endif
