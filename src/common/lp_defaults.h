/*  lp_defaults.h - every tunable of luaparallel, with its unit in the name
    (_MSEC, _BYTES; plain counts otherwise) or in its comment: protocol and
    wire first, then the controller, the engine and the client. Profiles
    and command-line options override the runtime ones; the #ifndef ones
    can also be set at build time (-D). Sizes fixed by a format (tags,
    ext payloads, ping bytes) stay next to the code that reads them.  */
#ifndef LP_DEFAULTS_H_INCLUDED
#define LP_DEFAULTS_H_INCLUDED

#define LP_PROTOCOL_VERSION        "1.0"
#define LP_SIGNATURE_SCHEME        "blake2b-256"
#define LP_KEY_BYTES               32          //  random key per cluster
#define LP_SIGNATURE_HEX_CHARS     64          //  keyed BLAKE2b-256 as hex

#define LP_HEARTBEAT_MSEC          1000        //  ping period
#define LP_HEARTBEAT_MAX_MISSES    3           //  pings missed before dead
#define LP_HEARTBEAT_CHECK_DIV     4           //  liveness checked period/DIV
#define LP_HEARTBEAT_SILENT_FACTOR 10          //  dead after this many times the
                                               //  misses' time even when most
                                               //  engines are silent too
#define LP_HEARTBEAT_MAX_FRAME     256         //  bytes; pings are 12, pongs 12 or 20
#define LP_SMALL_MAX_FRAME         (64 * 1024) //  ZMQ_MAXMSGSIZE of the controller's
                                               //  subscription sockets (notification,
                                               //  iopub to clients: they read subscriptions)
#define LP_RECONNECT_MIN_MSEC      500         //  engine backoff start
#define LP_RECONNECT_MAX_MSEC      32000       //  engine backoff cap

#define LP_DATA_MAX_FRAME          (2 * 1024 * 1024)    //  ZMQ_MAXMSGSIZE of the data
                                               //  channels: no frame is larger (lp_codec
                                               //  cuts values into LP_PIECE_BYTES pieces)
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
#define LP_BIND_PORT_MIN           10000       //  controller ports: random in [this, ephemeral low)
#define LP_BIND_PORTS_MIN          1000        //  ... when that range has at least this many
#define LP_BIND_ATTEMPTS           64          //  random ports tried before the kernel picks
#define LP_RESTORE_BIND_MSEC       5000        //  --restore: wait this long for a held port
#define LP_RESTORE_BIND_RETRY_MSEC 20          //  ... trying again this often
#define LP_DRAIN_BATCH             256         //  messages handled per wake-up
#define LP_TASK_HWM                2           //  tasks outstanding per engine

#define LP_REGISTER_TIMEOUT_MSEC   5000        //  engine registration deadline
#define LP_CONNECT_TIMEOUT_MSEC    5000        //  client connect default
#define LP_CLIENT_LOST_AFTER_MSEC  3000        //  client: controller silent this long is lost
#define LP_CLIENT_ABORT_MSEC       5000        //  client: wait for abort replies
#define LP_LUA_WAIT_MSEC           3600000     //  Lua/lpsh blocking call default deadline
#define LP_SHUTDOWN_GRACE_MSEC     2000        //  before SIGKILL of local engines
#define LP_ENGINE_LOST_EXIT_MSEC   60000       //  engines the controller or cluster.sh starts exit
                                               //  when the controller is gone this long (--engine-wait)
#define LP_STUCK_GRACE_MSEC        5000        //  engine: past time_limit / interrupt, then exit
#define LP_EXIT_STUCK              75          //  engine exit status: request stuck in a C call
#define LP_ENGINE_MEMORY_SHARE     50          //  engine: default cap, % of physical memory / -n

//  Sockets and wire (lp_wire.c, lp_value.c, lp_guard.c, lp_util.c)
#ifndef LP_LINGER_MSEC
#   define LP_LINGER_MSEC          200         //  unsent messages kept on close
#endif
#ifndef LP_DROP_LOG_PEERS
#   define LP_DROP_LOG_PEERS       4096        //  peers remembered for drop logging
#endif
#define LP_MSG_ID_MAX_CHARS        256         //  longer msg_ids are malformed
#define LP_PEER_SHOW_BYTES         32          //  identity bytes shown in drop logs
#define LP_MAP_INDEX_MIN           16          //  value maps: hash index above this many keys
#define LP_PRINT_MAX_ITEMS         20          //  lp_value_print: elements per container
#define LP_GUARD_MIN_CAP           1024        //  replay guard: smallest ring
#define LP_RANDOM_POOL_BYTES       4096        //  random bytes drawn at a time per thread

//  Controller (src/controller)
#define LP_READY_TIMEOUT_MSEC      60000       //  -n engines must register by then
#define LP_LUA_ENGINE_MSEC         30000       //  Lua rc:shutdown_engine / rc:restart_engine
                                               //  default deadline (an engine starts in
                                               //  well under that)
#define LP_DOCTOR_CALIBRATION_LOOPS 4000000    //  doctor: iterations of the calibration loop
#define LP_DOCTOR_CALIBRATION_RUNS 3           //  ... best of this many runs
#define LP_ENGINE_NICE             19          //  local engines' user code runs at this
                                               //  niceness increment (--engine-nice) ...
#define LP_HEARTBEAT_CROWDED_MISSES 10         //  ... and their max_misses default
#define LP_ENGINE_NICE_PER_CPU     4           //  ... when there are more local engines
                                               //  than this per CPU (docs/operations.md)
#define LP_CONTROLLER_IO_THREADS   3           //  ZeroMQ I/O threads: mux, scheduler, heartbeat
#define LP_HEARTBEAT_IO_THREAD     2           //  ... the heartbeat sockets' one
#define LP_HELLO_WAIT_MSEC         30000       //  hub: a registering engine's heartbeat is
                                               //  judged after this (not yet ready)
#define LP_START_WINDOW            32          //  local engines started and not yet
                                               //  registered at a time (issue 13: no storm)
#define LP_LAUNCHER_OPTS_MAX       64          //  --launcher-opt KEY=VALUE pairs
#define LP_LAUNCHER_STOP_MSEC      60000       //  `lp-launch-KIND stop` may take this long
#define LP_LAUNCHER_TAIL_LINES     6           //  launcher output lines quoted in an error
#define LP_CONTROLLER_MMAP_THRESHOLD (256 * 1024)  //  bytes: allocations from here mapped singly
#define LP_CONFIG_MAX_INSTRUCTIONS 1000000     //  Lua instructions a config file may run
#define LP_QUICK_EXIT_MSEC         10000       //  an engine exit this soon after start is quick
#define LP_QUICK_EXITS_MAX         5           //  quick exits in a row: no more restarts
#define LP_TASK_HISTORY            65536       //  scheduler: outcomes kept for dependencies
#define LP_TIMEOUT_CHECK_MSEC      20          //  scheduler: task timeout resolution
#define LP_TRIM_AFTER_TASKS        10000       //  scheduler: tasks between malloc_trim calls
#define LP_CLIENT_TASKS_MAX        4096        //  scheduler: unfinished tasks of one client
#define LP_CLIENT_RCVHWM           8192        //  scheduler: messages queued in ZeroMQ per client
#define LP_TASK_ID_MAX             64          //  scheduler: longer task msg_ids are refused
#define LP_LOG_MAX_MB              10          //  a log file is rotated past this (--log-max;
                                               //  also lpengine's, for --pipe-log)
#define LP_LOG_KEEP                5           //  rotated files kept per log (--log-keep)
#define LP_LOG_CHECK_MSEC          250         //  the controller's own log: size checked this often
#define LP_LOG_CHUNK_BYTES         (64 * 1024) //  engine output read from its pipe at a time
#define LP_DASHBOARD_MSEC          1000        //  dashboard: the hub's snapshot period (SSE ~1 Hz)
#define LP_DASHBOARD_HWM           2           //  dashboard: snapshots queued, then dropped
#define LP_DASHBOARD_CONNECTIONS   32          //  dashboard: HTTP connections at once
#define LP_DASHBOARD_IDLE_SEC      60          //  dashboard: an idle connection is closed
#define LP_DASHBOARD_HISTORY       300         //  dashboard: throughput points kept (seconds)
#define LP_DASHBOARD_TASKS         600         //  dashboard: task stream entries sent
#define LP_DASHBOARD_ERRORS        20          //  dashboard: recent errors kept
#define LP_DASHBOARD_ROWS_MAX      20000       //  dashboard: store rows read per snapshot
#define LP_DASHBOARD_KEEPALIVE_SEC 15          //  dashboard: SSE comment when nothing changes
#define LP_DASHBOARD_TOKEN_BYTES   24          //  dashboard: token, random (hex in the file)

//  Engine (src/engine)
#define LP_ENGINE_POLL_MSEC        500         //  main loop wakes to check signals
#define LP_ENGINE_RECONNECT_IVL_MSEC     100   //  mux/task/control/iopub reconnect
#define LP_ENGINE_RECONNECT_IVL_MAX_MSEC 2000  //  its backoff cap
#define LP_ENGINE_CACHE_MAX        1024        //  compiled functions kept
#define LP_ENGINE_ID_MAX           1000000     //  ids an engine may ask for: 0 to this - 1
#define LP_ENGINE_STDOUT_MAX       (64 * 1024 * 1024)  //  bytes: reply "stdout" cap
#define LP_STREAM_WINDOW_MSEC      20          //  stream messages counted per window:
#define LP_STREAM_WINDOW_MSGS      100         //  past this many, prints are batched
#define LP_STREAM_BATCH_BYTES      (64 * 1024) //  a batch goes out at this size
#define LP_ENGINE_SEND_TIMEOUT_MSEC 1000       //  a send with no peer gives up
#define LP_ENGINE_DONE_IDS         1024        //  completed msg_ids remembered
#define LP_ENGINE_ABORT_MARKS      4096        //  aborted msg_ids waiting to come
                                               //  (they expire after LP_REPLAY_WINDOW_MSEC)

//  Client (src/client), Lua module, lpsh
#define LP_CLIENT_DRAIN_MAX        1000        //  messages per socket per poll round
#define LP_CLIENT_RESTATUS_MSEC    500         //  wait_for_engines re-asks status
#define LP_CLIENT_SLICE_MSEC       50          //  wait_for_engines poll slice
#define LP_CLIENT_SNDTIMEO_MSEC    5000        //  a send that blocks this long fails
#define LP_CLIENT_TICK_MIN_MSEC    10          //  shortest lost-detection tick
#define LP_CLIENT_TASK_WINDOW      4096        //  tasks in flight; more wait in the client
#define LP_CLIENT_RECOVER_IDS      4096        //  msg_ids per result_request after a restart
#define LP_RESULT_SEARCH_MAX       16          //  result slots searched in place; more: indexed
#define LP_LUA_POLL_MSEC           100         //  Lua module: wait slice of a blocking call
#define LP_LUA_PROGRESS_MSEC       300         //  Lua module: first lp.progress call of a wait
#define LPSH_HISTORY_SIZE          1000        //  lpsh: lines kept in the history file

#endif
