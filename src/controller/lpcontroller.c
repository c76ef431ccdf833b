/*  =========================================================================
    lpcontroller.c - the controller process

    One process of actors: the hub (registration, heartbeat, notifications,
    queries, lp_hub.c) on its own thread, which starts the
    data-path actors (mux, control, scheduler, relay) on theirs. The main
    thread parses the configuration, makes the key, starts the hub, writes
    the connection files from the endpoints it reports, launches the local
    engines as child processes and then waits: signals are blocked before
    any thread starts and read from a signalfd in the main thread's
    reactor, with the hub's pipe. SIGCHLD reaps engines (their death is
    known at once and told to the hub), SIGTERM / SIGINT stop the
    controller cleanly, and so does the hub's SHUTDOWN (a client asked);
    SIGHUP reopens the log files.

    Supervision of local engines (docs/operations.md): each gets
    --memory-limit (its share of physical memory, or --engine-memory),
    --lost-exit (--engine-wait, default LP_ENGINE_LOST_EXIT_MSEC: long
    enough for a restart with --restore, and engines of a controller killed
    -9 still end by themselves) and a pid file. An engine that exits with
    LP_EXIT_STUCK ended itself because a request stayed stuck in a C call
    past its time limit: the hub fails its requests with TimeLimit and a
    new engine starts in its place asking for the same id. With
    --restart-engines any other crash is restarted the same way.

    Logs (lp_log.c): the daemon's stdout/stderr are log/lpcontroller.log,
    local engines write into pipes that the log thread copies into
    log/engine-<k>.log; every file rotates past --log-max MB keeping
    --log-keep old ones, and SIGHUP reopens them (logrotate). A log folder
    that cannot be written stops the start before the fork, with its
    reason on the caller's terminal.

    --restore takes over from a controller of the profile that died
    (docs/operations.md, "Restarting a controller"): the key and ports of
    its connection files (the hub binds those endpoints again), its live
    local engines adopted by pid (lp_launcher_adopt), and what it left
    queued or running in the task store ended with ControllerRestarted
    before the hub serves anyone.

    --daemon forks before any ZeroMQ state exists. The parent waits on a
    pipe until the daemon reports "N engines registered" or an error, prints
    that one line and exits 0 or 1; so `cluster.sh start` returns exactly
    when the cluster is usable, and says why when it is not.
    =========================================================================
*/
#include "lp_util.h"
#include <malloc.h>

#include "lp_hub.h"
#include "lp_conn.h"
#include "lp_launcher.h"
#include "lp_remote.h"
#include "lp_log.h"
#include "lp_config.h"
#include "lp_scheduler.h"
#include "lp_bind.h"
#include "lp_zap.h"
#include "lp_store.h"
#include "lp_dashboard.h"

#include <getopt.h>
#include <sodium.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

typedef struct {
    char profile_dir [1024];            //  the profile folder
    const char *ip;                     //  bind address
    const char *location;               //  address for the files
    int engines;                        //  engines to start (local or remote)
    bool engines_set;                   //  -n or --engines N given
    int engines_default;                //  --engines-default N, -1 unset
    const char *kind;                   //  --engines KIND; NULL: local
    char kind_text [64];                //  ... lower-cased (SSH = ssh)
    const char *launcher_opts [LP_LAUNCHER_OPTS_MAX];
                                        //  --launcher-opt and shorthands
    size_t launcher_opt_count;          //  entries of launcher_opts
    char shorthands [LP_LAUNCHER_OPTS_MAX][LP_CONFIG_OPTION_CHARS];
                                        //  "key=value" of the shorthands
    int heartbeat_msec;                 //  ping period
    int max_misses;                     //  misses before dead
    bool daemon;                        //  detach once ready
    const char *scheduler;              //  task scheme name
    int hwm;                            //  tasks per engine, -1 unset
    long engine_memory_mb;              //  per local engine, -1 unset
    bool restart_engines;               //  restart crashed local engines
    long replay_window_msec;            //  0 unset
    bool no_db;                         //  --no-db: no task store
    long db_max_result;                 //  --db-max-result, -1 unset
    long log_max_mb;                    //  rotate logs past this, -1 unset
    long log_keep;                      //  rotated logs kept, -1 unset
    long engine_wait_sec;               //  local engines' --lost-exit, -1 unset
    long engine_nice;                   //  local engines' --nice, -1 unset
    long ready_timeout_sec;             //  engines must register by then, -1 unset
    int secure;                         //  CURVE: 1 --secure, 0 --insecure, -1 unset
    bool restore;                       //  --restore: a dead controller's
                                        //  ports, key, engines and requests
    const char *dashboard;              //  --dashboard [ADDR:]PORT, or NULL
    lp_config_t file;                   //  the profile's config file
} s_options_t;

typedef struct {
    s_options_t *options;               //  what we were asked
    zactor_t *hub;                      //  the hub actor
    lp_keys_t keys;                     //  CURVE certificates (a secure cluster)
    zactor_t *zap;                      //  the ZAP handler (a secure cluster)
    lp_launcher_t *launcher;            //  local engines
    lp_remote_t *remote;                //  a launcher script's, or NULL
    lp_store_t *store;                  //  the task store, NULL when off
    lp_dashboard_t *dashboard;          //  the web dashboard, NULL when off
    lp_log_t *log;                      //  log files and their rotation
    int ready_fd;                       //  daemon's report pipe, -1 once used
    int64_t started;                    //  zclock_mono at start
    bool failed;                        //  could not get ready
    bool reported;                      //  readiness said once
    bool stopping;                      //  the hub said SHUTDOWN
    bool windowed;                      //  local engines still being started
                                        //  a window at a time (s_start_more)
    int *restarts;                      //  pids a client asked to restart
    size_t nrestarts;                   //  (signalled, not yet exited)
} s_controller_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: lpcontroller [options]\n"
        "  --profile NAME       profile (default \"default\"): $LP_HOME/profile_NAME\n"
        "                       or ~/.luaparallel/profile_NAME\n"
        "  --profile-dir DIR    use DIR as the profile folder\n"
        "  --ip IP              address to listen on (default 127.0.0.1)\n"
        "  --location HOST      address written into the connection files\n"
        "                       (default: the --ip address)\n"
        "  -n N, --engines N    start N engines (default: the config file's engines,\n"
        "                       else --engines-default, else 0)\n"
        "  --engines KIND       who starts them: local (default), or a launcher script\n"
        "                       lp-launch-KIND: ssh, mpi, slurm, pbs, sge (found in\n"
        "                       $LP_LAUNCHER_DIR, <prefix>/libexec/luaparallel or the\n"
        "                       source tree's src/launchers); see docs/operations.md,\n"
        "                       \"Launchers\". Its output goes to <profile>/log/launcher.log\n"
        "  --launcher-opt K=V   an option of the launcher (repeatable), given to it as\n"
        "                       $LP_OPT_K; shorthands:\n"
        "  --hosts LIST         hosts=LIST (ssh: [user@]host[%%port][:count],...)\n"
        "  --mpi-args ARGS      mpi_args=ARGS (extra mpiexec arguments)\n"
        "  --slurm-partition P  partition=P\n"
        "  --slurm-time T       time=T (walltime, e.g. 1:00:00)\n"
        "  --slurm-account A    account=A\n"
        "                       Without -n, a launcher's count is the sum of the\n"
        "                       :count of its hosts (1 for a host without one)\n"
        "  --ready-timeout SEC  the engines must register within SEC seconds (default %d;\n"
        "                       a batch queue may need more), or the start fails\n"
        "  --engines-default N  the count when neither -n, --engines N nor the\n"
        "                       config file gives one (cluster.sh: the CPUs)\n"
        , LP_READY_TIMEOUT_MSEC / 1000);
    fprintf (out,
        "  --heartbeat MSEC     heartbeat period (default %d)\n"
        "  --max-misses N       missed heartbeats before an engine is dead (default %d;\n"
        "                       %d with more than %d local engines per CPU)\n"
        "  --scheduler NAME     load-balancing scheme: leastload (default), lru,\n"
        "                       plainrandom, weighted, twobin\n"
        "  --hwm N              most tasks outstanding on one engine (default %d; 0 = no limit)\n"
        "  --engine-memory MB   memory cap of each local engine's Lua state (default\n"
        "                       %d%% of physical memory divided by -n; 0 = no cap)\n"
        "  --restart-engines    restart a local engine that crashes (under its id;\n"
        "                       engines stuck in a C call are always restarted)\n"
        "  --replay-window MSEC requests dated further than this from now are refused,\n"
        "                       and ids are remembered this long (default %d)\n"
        "  --no-db              no task store (<profile>/db/tasks.sqlite3): results\n"
        "                       cannot be fetched by id, history is not kept\n"
        "  --db-max-result BYTES  largest reply the task store keeps (default %d);\n"
        "                       larger ones are recorded as too large to keep\n"
        "  --log-max MB         rotate each log file past MB megabytes (default %d;\n"
        "                       0 = never)\n"
        "  --log-keep N         rotated files kept per log (default %d)\n"
        "  --engine-wait SEC    local engines exit after SEC seconds without their\n"
        "                       controller (default %d; 0 = never)\n"
        "  --engine-nice N      local engines run requests at niceness +N, so that busy\n"
        "                       engines leave the controller its CPU (default: %d when\n"
        "                       there are more than %d engines per CPU, else 0)\n"
        "  --secure             CURVE: encrypt every channel and admit only the keys of\n"
        "                       <profile>/security (the default on a non-loopback --ip)\n"
        "  --insecure           no CURVE, even on a non-loopback --ip (warns then)\n"
        "  --restore            take over from a controller of this profile that died:\n"
        "                       the same ports and key (from security/), its live local\n"
        "                       engines adopted (they re-register under their ids), its\n"
        "                       unfinished requests ended with ControllerRestarted\n"
        "  --dashboard [ADDR:]PORT  serve the web dashboard there (ADDR default\n"
        "                       127.0.0.1; PORT 0: any free one, see\n"
        "                       <profile>/security/dashboard.url); a secure controller\n"
        "                       asks for the token of security/dashboard.token\n"
        "  --daemon             detach; return once the engines are registered\n"
        "                       (SIGHUP reopens the log files)\n"
        "  -h, --help           this text\n"
        "Settings may also come from <profile>/lpcontroller_config.lua\n"
        "(scheduler, hwm, heartbeat_msec, max_misses, ip, location, engine_memory_mb,\n"
        "restart_engines, replay_window_msec, log_max_mb, log_keep, engine_wait_sec,\n"
        "ready_timeout_sec, dashboard, "
        "engines = N or \"KIND\", launcher = { key = value, ... });\n"
        "options win.\n",
        LP_HEARTBEAT_MSEC, LP_HEARTBEAT_MAX_MISSES, LP_HEARTBEAT_CROWDED_MISSES,
        LP_ENGINE_NICE_PER_CPU, LP_TASK_HWM, LP_ENGINE_MEMORY_SHARE,
        LP_REPLAY_WINDOW_MSEC, LP_STORE_MAX_RESULT,
        LP_LOG_MAX_MB, LP_LOG_KEEP, LP_ENGINE_LOST_EXIT_MSEC / 1000, LP_ENGINE_NICE,
        LP_ENGINE_NICE_PER_CPU);
}

//  More local engines than LP_ENGINE_NICE_PER_CPU per CPU: engines
//  outnumber the CPUs so far that a ping takes seconds to reach the last
//  of them and its pong as long to come back (1024 engines on 2 CPUs:
//  a third of them 3 s late while a map ran), so the defaults change:
//  their user code is niced (s_engine_nice) and they may miss
//  LP_HEARTBEAT_CROWDED_MISSES pings (ipyparallel's default is 10 of 3 s).
//  A crashed local engine is still seen at once (SIGCHLD).
static bool
s_crowded (const s_options_t *options)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    return options->engines > LP_ENGINE_NICE_PER_CPU * (cpus > 0? cpus: 1);
}

//  The niceness increment of local engines' user code: --engine-nice, or
//  LP_ENGINE_NICE once engines outnumber the CPUs LP_ENGINE_NICE_PER_CPU
//  times over. CFS gives every runnable thread the same share: 1024
//  engines spinning on 2 CPUs left each controller thread 1/500 of a CPU,
//  too little to read 1024 pongs a second (the heartbeat thread fell
//  behind and clients lost the controller); at niceness 19 their weight
//  is 15 to the controller's 1024, and it gets about 12 %.
static int
s_engine_nice (const s_options_t *options)
{
    if (options->engine_nice >= 0)
        return (int) options->engine_nice;
    return s_crowded (options)? LP_ENGINE_NICE: 0;
}

//  Reports readiness (or failure) once: to the daemon's parent, or stdout.
static void
s_report (s_controller_t *self, const char *line, bool ok)
{
    if (!ok)
        self->failed = true;
    if (ok)
        zsys_info ("%s", line);
    else
        zsys_error ("%s", line);
    if (self->reported)
        return;
    self->reported = true;
    if (self->ready_fd >= 0) {
        char text [1200];
        int len = snprintf (text, sizeof text, "%s %s\n", ok? "ok": "error", line);
        if (write (self->ready_fd, text, (size_t) len) < 0)
            zsys_warning ("cannot report to the starting process");
        close (self->ready_fd);
        self->ready_fd = -1;
    }
    else {
        fprintf (ok? stdout: stderr, "lpcontroller: %s\n", line);
        fflush (ok? stdout: stderr);
    }
}

static void
s_on_ready (s_controller_t *self, int count)
{
    char line [1200];
    snprintf (line, sizeof line, "%d engine%s registered in %lld ms (profile %s)",
              count, count == 1? "": "s", (long long) (zclock_mono () - self->started),
              self->options->profile_dir);
    s_report (self, line, true);
}

//  Local engines start a window at a time: at most LP_START_WINDOW of
//  them started and not yet registered. Started all at once, 1024
//  engines are 1024 processes loading their libraries, connecting and
//  registering together: on 2 CPUs their heartbeats went unanswered
//  for seconds (engines declared dead before they were ready) and under
//  load only 23 of 1024 registered within a minute (issue 13). The
//  hub's PROGRESS (the count registered) opens the window further.
static void
s_start_more (s_controller_t *self, int registered)
{
    if (!self->windowed || self->failed)
        return;
    int total = self->options->engines;
    int started = (int) lp_launcher_count (self->launcher);
    int want = registered + LP_START_WINDOW < total? registered + LP_START_WINDOW: total;
    char err [512];
    if (want > started
    &&  lp_launcher_start (self->launcher, want - started, err, sizeof err) != 0)
        s_report (self, err, false);
    if (want >= total)
        self->windowed = false;
}

//  A client asked to restart engine id, process pid (the hub's RESTART):
//  a child of ours is stopped (SIGTERM) and restarted when it has
//  exited (s_on_child_exit); the hub gets RESTARTING with "" or why not.
static void
s_on_restart (s_controller_t *self, int id, int pid)
{
    char why [256] = "";
    int *grown = NULL;
    if (pid <= 0 || lp_launcher_slot (self->launcher, pid) < 0)
        snprintf (why, sizeof why, "engine %d (pid %d) was not started by this controller: "
                  "only its local engines can be restarted", id, pid);
    else
    if (!(grown = (int *) realloc (self->restarts, (self->nrestarts + 1) * sizeof (int))))
        snprintf (why, sizeof why, "out of memory");
    else {
        self->restarts = grown;
        self->restarts [self->nrestarts++] = pid;
        if (kill (pid, SIGTERM) != 0)
            snprintf (why, sizeof why, "cannot stop engine %d (pid %d): %s", id, pid,
                      strerror (errno));
    }
    if (*why)
        zsys_warning ("restart of engine %d refused: %s", id, why);
    else
        zsys_info ("engine %d (pid %d): restart asked by a client", id, pid);
    zsock_send (self->hub, "siis", "RESTARTING", id, pid, why);
}

//  True (once) when a client asked to restart pid.
static bool
s_restart_asked (s_controller_t *self, int pid)
{
    for (size_t i = 0; i < self->nrestarts; i++)
        if (self->restarts [i] == pid) {
            self->restarts [i] = self->restarts [--self->nrestarts];
            return true;
        }
    return false;
}

//  An event from the hub (READY, PROGRESS, SHUTDOWN, RESTART; lp_hub.h). Takes
//  msg. -1 when the controller is to stop.
static int
s_hub_event (s_controller_t *self, zmsg_t *msg)
{
    char *command = zmsg_popstr (msg);
    char *count = zmsg_popstr (msg);
    if (command && streq (command, "READY") && count)
        s_on_ready (self, atoi (count));
    else
    if (command && streq (command, "PROGRESS") && count)
        s_start_more (self, atoi (count));
    else
    if (command && streq (command, "SHUTDOWN"))
        self->stopping = true;
    else
    if (command && streq (command, "RESTART") && count) {
        char *pid = zmsg_popstr (msg);
        s_on_restart (self, atoi (count), pid? atoi (pid): 0);
        free (pid);
    }
    free (command);
    free (count);
    zmsg_destroy (&msg);
    return self->stopping || self->failed? -1: 0;
}

static int
s_on_hub (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    zmsg_t *msg = zmsg_recv (sock);
    return msg? s_hub_event ((s_controller_t *) arg, msg): -1;
}

//  Asks the hub (EXITED pid, ENGINES) and returns the number it answers,
//  -1 if none. Events that come first are handled in order.
static int
s_hub_ask (s_controller_t *self, const char *command, int arg)
{
    if (arg >= 0)
        zsock_send (self->hub, "si", command, arg);
    else
        zstr_send (self->hub, command);
    zmsg_t *msg;
    while ((msg = zmsg_recv (self->hub))) {
        if (zframe_streq (zmsg_first (msg), command)) {
            zmsg_t *reply = msg;
            free (zmsg_popstr (reply));
            char *number = zmsg_popstr (reply);
            int value = number? atoi (number): -1;
            free (number);
            zmsg_destroy (&reply);
            return value;
        }
        s_hub_event (self, msg);
    }
    return -1;
}

static void
s_on_child_exit (int pid, int index, int status, const char *reason, void *arg)
{
    s_controller_t *self = (s_controller_t *) arg;
    bool stuck = WIFEXITED (status) && WEXITSTATUS (status) == LP_EXIT_STUCK;
    bool crashed = WIFSIGNALED (status)
               || (WIFEXITED (status) && WEXITSTATUS (status) != 0
               &&  WEXITSTATUS (status) != 127);
    //  The hub marks the engine's process exited: should the new engine's
    //  registration reach it before DEAD below, the old engine dies then,
    //  so the new one gets the old id back either way. (Asked first: a
    //  READY the hub sent before its answer is handled meanwhile.)
    int id = s_hub_ask (self, "EXITED", pid);
    bool asked = s_restart_asked (self, pid);
    bool restart = self->reported && !self->failed
                && (stuck || asked || (crashed && self->options->restart_engines));
    char err [512] = "";
    if (restart && lp_launcher_restart (self->launcher, index, id, err, sizeof err) != 0) {
        zsys_error ("engine %d (pid %d) %s: %s", id, pid, reason, err);
        restart = false;
    }
    char text [400];
    if (restart) {
        zsys_info ("engine %d (pid %d) %s: restarted, asking for id %d", id, pid, reason,
                   id >= 0? id: index);
        if (stuck)
            snprintf (text, sizeof text, "request stuck inside a C call past its time limit or interrupt; "
                      "engine restarted, its state was lost");
        else
        if (asked)
            snprintf (text, sizeof text, "engine restarted at a client's request, its state was lost");
        else
            snprintf (text, sizeof text, "%s; engine restarted, its state was lost", reason);
    }
    else
    if (stuck)
        snprintf (text, sizeof text, "request stuck inside a C call past its time limit or interrupt; "
                  "engine not restarted, its state was lost");
    else
        snprintf (text, sizeof text, "%s", reason);
    zsock_send (self->hub, "siss", "DEAD", pid, text, stuck? "TimeLimit": "EngineError");
    if (!self->reported) {
        char line [1200];
        snprintf (line, sizeof line, "engine %d (pid %d) %s before registering; see %s/log/engine-%d.log",
                  index, pid, reason, self->options->profile_dir, index);
        s_report (self, line, false);
    }
}

//  The launcher's `start` ended. Exit 0: its engines were started or
//  submitted (they still have to register). Otherwise, before the
//  engines registered, the start fails quoting the script's output
//  (lp_remote_tail).
static void
s_on_launcher_exit (s_controller_t *self, int status)
{
    const char *kind = self->options->kind;
    bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    char tail [600] = "", line [1200];
    if (ok) {
        zsys_info ("launcher %s: start exited 0%s", kind,
                   self->reported? "": "; waiting for its engines to register");
        return;
    }
    lp_remote_tail (self->remote, tail, sizeof tail);
    snprintf (line, sizeof line, "launcher %s: start failed (%s %d): %s (%.300s/log/launcher.log)",
              kind, WIFEXITED (status)? "exit status": "signal",
              WIFEXITED (status)? WEXITSTATUS (status): WTERMSIG (status),
              *tail? tail: "it printed nothing", self->options->profile_dir);
    if (self->reported)
        zsys_warning ("%s", line);
    else
        s_report (self, line, false);
}

//  SIGHUP: every log file reopened by its name (after a logrotate)
static void
s_reopen_logs (s_controller_t *self)
{
    zsys_info ("SIGHUP: reopening the log files");
    if (self->log)
        lp_log_reopen (self->log);
}

static int
s_on_signal (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    s_controller_t *self = (s_controller_t *) arg;
    struct signalfd_siginfo info;
    if (read (item->fd, &info, sizeof info) != (ssize_t) sizeof info)
        return 0;
    if (info.ssi_signo == SIGCHLD) {
        lp_launcher_reap (self->launcher, s_on_child_exit, self);
        int status = 0;
        if (self->remote && lp_remote_reap (self->remote, &status))
            s_on_launcher_exit (self, status);
        return self->failed || self->stopping? -1: 0;
    }
    if (info.ssi_signo == SIGHUP) {
        s_reopen_logs (self);
        return 0;
    }
    zsys_info ("signal %d: stopping", (int) info.ssi_signo);
    return -1;
}

static int
s_on_ready_timeout (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_controller_t *self = (s_controller_t *) arg;
    if (self->reported)
        return 0;
    char line [1200];
    int used = snprintf (line, sizeof line, "only %d of %d engines registered within %d s",
                         s_hub_ask (self, "ENGINES", -1), self->options->engines,
                         (int) self->options->ready_timeout_sec);
    if (self->remote) {
        char tail [600];
        lp_remote_tail (self->remote, tail, sizeof tail);
        snprintf (line + used, sizeof line - (size_t) used, "; launcher %s said: %s (%.300s/log/"
                  "launcher.log)", self->options->kind, *tail? tail: "nothing",
                  self->options->profile_dir);
    }
    s_report (self, line, false);
    return -1;
}

static int
s_mkdirs (const char *dir, char *err, size_t errlen)
{
    char path [1100];
    //  Parents first (mkdir -p), then the profile's own folders.
    snprintf (path, sizeof path, "%s", dir);
    for (char *slash = strchr (path + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (path, 0755) != 0 && errno != EEXIST) {
            snprintf (err, errlen, "%s: cannot create: %s", path, strerror (errno));
            return -1;
        }
        *slash = '/';
    }
    const char *subs [] = { "", "/security", "/log", "/pid" };
    for (int i = 0; i < 4; i++) {
        snprintf (path, sizeof path, "%s%s", dir, subs [i]);
        if (mkdir (path, i == 1? 0700: 0755) != 0 && errno != EEXIST) {
            snprintf (err, errlen, "%s: cannot create: %s", path, strerror (errno));
            return -1;
        }
    }
    return 0;
}

//  A running controller for this profile? Its pid, else 0.
static int
s_running_pid (const char *pid_path)
{
    int pid = lp_launcher_pid_read (pid_path);
    if (pid > 0 && lp_launcher_pid_alive (pid) && pid != getpid ())
        return pid;
    return 0;
}

//  A non-negative integer option value; -2 (refused by s_parse) otherwise.
static long
s_number (const char *text, const char *option)
{
    char *end = NULL;
    long value = strtol (text, &end, 10);
    if (!*text || *end || value < 0 || value > 1000000000) {
        fprintf (stderr, "lpcontroller: %s wants a number >= 0, got '%s'\n", option, text);
        return -2;
    }
    return value;
}

static bool s_loopback (const char *ip);

//  On the caller's terminal (before a --daemon fork), as well as in the
//  log (s_start_security): --insecure on an address others can reach.
static void
s_warn_insecure (const s_options_t *options)
{
    if (options->secure == 0 && !s_loopback (options->ip))
        fprintf (stderr, "lpcontroller: warning: --insecure on %s, not a loopback address: "
                 "anyone who reaches it can read the traffic and the engines' output "
                 "(docs/operations.md, Security)\n", options->ip);
}

//  --engines N|KIND: a count, or who starts the engines. 0 / -1.
static int
s_engines_arg (s_options_t *options, const char *arg)
{
    if (*arg && strspn (arg, "0123456789") == strlen (arg)) {
        options->engines = (int) s_number (arg, "--engines");
        options->engines_set = true;
        return 0;
    }
    //  ipyparallel spells them SSH, MPI, Slurm: any case will do
    size_t len = strlen (arg);
    for (size_t i = 0; i < len && i < sizeof options->kind_text; i++)
        options->kind_text [i] = (char) tolower ((unsigned char) arg [i]);
    if (!*arg || len >= sizeof options->kind_text
    ||  strspn (arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != len) {
        fprintf (stderr, "lpcontroller: --engines wants a count or a launcher (local, ssh, "
                 "mpi, slurm, pbs, sge), got '%s'\n", arg);
        return -1;
    }
    options->kind_text [len] = 0;
    options->kind = options->kind_text;
    return 0;
}

//  --launcher-opt KEY=VALUE, or a shorthand (code: its getopt value). 0 / -1.
static int
s_launcher_opt (s_options_t *options, int code, const char *arg)
{
    static const char *keys [] = { NULL, NULL, "hosts", "mpi_args", "partition", "time",
                                   "account" };
    const char *option = arg;
    size_t index = options->launcher_opt_count;
    if (index == LP_LAUNCHER_OPTS_MAX) {
        fprintf (stderr, "lpcontroller: more than %d launcher options\n", LP_LAUNCHER_OPTS_MAX);
        return -1;
    }
    if (code != 1001) {
        int len = snprintf (options->shorthands [index], LP_CONFIG_OPTION_CHARS, "%s=%s",
                            keys [code - 1000], arg);
        if (len < 0 || len >= LP_CONFIG_OPTION_CHARS) {
            fprintf (stderr, "lpcontroller: launcher option %s is too long\n", keys [code - 1000]);
            return -1;
        }
        option = options->shorthands [index];
    }
    if (!lp_remote_option_valid (option)) {
        fprintf (stderr, "lpcontroller: a launcher option is KEY=VALUE (KEY of letters, digits "
                 "and _, VALUE on one line), got '%s'\n", option);
        return -1;
    }
    options->launcher_opts [options->launcher_opt_count++] = option;
    return 0;
}

//  Who starts the engines, and how many: the command line, else the
//  config file, else --engines-default. Launcher options: the config
//  file's first, then the command line's (which win, key by key). 0 / -1.
static int
s_resolve_engines (s_options_t *options)
{
    lp_config_t *file = &options->file;
    bool file_count = *file->engines && strspn (file->engines, "0123456789") == strlen (file->engines);
    if (!options->kind && *file->engines && !file_count
    &&  s_engines_arg (options, file->engines) != 0)
        return -1;
    if (options->kind && streq (options->kind, "local"))
        options->kind = NULL;
    size_t cmdline = options->launcher_opt_count;
    if (cmdline + (size_t) file->launcher_count > LP_LAUNCHER_OPTS_MAX) {
        fprintf (stderr, "lpcontroller: more than %d launcher options\n", LP_LAUNCHER_OPTS_MAX);
        return -1;
    }
    memmove (options->launcher_opts + file->launcher_count, options->launcher_opts,
             cmdline * sizeof (char *));
    for (int i = 0; i < file->launcher_count; i++) {
        if (!lp_remote_option_valid (file->launcher [i])) {
            fprintf (stderr, "lpcontroller: the config file's launcher option '%s' is not "
                     "name = value on one line\n", file->launcher [i]);
            return -1;
        }
        options->launcher_opts [i] = file->launcher [i];
    }
    options->launcher_opt_count += (size_t) file->launcher_count;
    if (!options->engines_set && file_count) {
        options->engines = atoi (file->engines);
        options->engines_set = true;
    }
    if (!options->engines_set && options->kind) {
        const char *hosts = NULL;
        for (size_t i = 0; i < options->launcher_opt_count; i++)
            if (strncmp (options->launcher_opts [i], "hosts=", 6) == 0)
                hosts = options->launcher_opts [i] + 6;
        if (hosts && *hosts) {
            options->engines = lp_remote_hosts_count (hosts);
            options->engines_set = true;
        }
        else {
            fprintf (stderr, "lpcontroller: --engines %s needs a count: -n N, or --hosts "
                     "(each host's :count, default 1)\n", options->kind);
            return -1;
        }
    }
    if (!options->engines_set && options->engines_default >= 0)
        options->engines = options->engines_default;
    if (options->kind && options->engines <= 0) {
        fprintf (stderr, "lpcontroller: --engines %s needs a count of 1 or more\n", options->kind);
        return -1;
    }
    return 0;
}

static int
s_parse (int argc, char **argv, s_options_t *options)
{
    static struct option longs [] = {
        { "profile", required_argument, 0, 'p' },
        { "profile-dir", required_argument, 0, 'd' },
        { "ip", required_argument, 0, 'i' },
        { "location", required_argument, 0, 'l' },
        { "engines", required_argument, 0, 'e' },
        { "engines-default", required_argument, 0, 1000 },
        { "launcher-opt", required_argument, 0, 1001 },
        { "hosts", required_argument, 0, 1002 },
        { "mpi-args", required_argument, 0, 1003 },
        { "slurm-partition", required_argument, 0, 1004 },
        { "slurm-time", required_argument, 0, 1005 },
        { "slurm-account", required_argument, 0, 1006 },
        { "ready-timeout", required_argument, 0, 1007 },
        { "heartbeat", required_argument, 0, 'b' },
        { "max-misses", required_argument, 0, 'm' },
        { "daemon", no_argument, 0, 'D' },
        { "scheduler", required_argument, 0, 's' },
        { "hwm", required_argument, 0, 'w' },
        { "engine-memory", required_argument, 0, 'M' },
        { "restart-engines", no_argument, 0, 'R' },
        { "replay-window", required_argument, 0, 'W' },
        { "no-db", no_argument, 0, 'N' },
        { "db-max-result", required_argument, 0, 'X' },
        { "log-max", required_argument, 0, 'L' },
        { "log-keep", required_argument, 0, 'K' },
        { "engine-wait", required_argument, 0, 'E' },
        { "engine-nice", required_argument, 0, 'P' },
        { "secure", no_argument, 0, 'S' },
        { "insecure", no_argument, 0, 'I' },
        { "restore", no_argument, 0, 'r' },
        { "dashboard", required_argument, 0, 'B' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    const char *profile = "default", *profile_dir = NULL;
    int c;
    while ((c = getopt_long (argc, argv, "n:h", longs, NULL)) != -1) {
        switch (c) {
            case 'p': profile = optarg; break;
            case 'd': profile_dir = optarg; break;
            case 'i': options->ip = optarg; break;
            case 'l': options->location = optarg; break;
            case 'n': options->engines = (int) s_number (optarg, "-n");
                      options->engines_set = true; break;
            case 'e': if (s_engines_arg (options, optarg) != 0) return -1; break;
            case 1000: options->engines_default = (int) s_number (optarg, "--engines-default");
                       break;
            case 1007: options->ready_timeout_sec = s_number (optarg, "--ready-timeout"); break;
            case 1001: case 1002: case 1003: case 1004: case 1005: case 1006:
                       if (s_launcher_opt (options, c, optarg) != 0) return -1;
                       break;
            case 'b': options->heartbeat_msec = atoi (optarg); break;
            case 'm': options->max_misses = atoi (optarg); break;
            case 'D': options->daemon = true; break;
            case 's': options->scheduler = optarg; break;
            case 'w': options->hwm = atoi (optarg); break;
            case 'M': options->engine_memory_mb = s_number (optarg, "--engine-memory"); break;
            case 'R': options->restart_engines = true; break;
            case 'W': options->replay_window_msec = s_number (optarg, "--replay-window"); break;
            case 'N': options->no_db = true; break;
            case 'X': options->db_max_result = s_number (optarg, "--db-max-result"); break;
            case 'L': options->log_max_mb = s_number (optarg, "--log-max"); break;
            case 'K': options->log_keep = s_number (optarg, "--log-keep"); break;
            case 'E': options->engine_wait_sec = s_number (optarg, "--engine-wait"); break;
            case 'P': options->engine_nice = s_number (optarg, "--engine-nice"); break;
            case 'S': options->secure = 1; break;
            case 'I': options->secure = 0; break;
            case 'r': options->restore = true; break;
            case 'B': options->dashboard = optarg; break;
            case 'h': s_usage (stdout); exit (0);
            default:  s_usage (stderr); return -1;
        }
    }
    if (optind < argc || options->engines < 0 || options->engines_default < -1
    ||  options->heartbeat_msec < 0
    ||  options->max_misses < 0 || options->engine_memory_mb < -1
    ||  options->replay_window_msec < 0 || options->log_max_mb < -1
    ||  options->log_keep < -1 || options->engine_wait_sec < -1
    ||  options->engine_nice < -1 || options->engine_nice > 19
    ||  options->ready_timeout_sec < -1
    ||  options->db_max_result < -1) {
        fprintf (stderr, "lpcontroller: bad arguments (see --help)\n");
        return -1;
    }
    if (profile_dir)
        snprintf (options->profile_dir, sizeof options->profile_dir, "%s", profile_dir);
    else
    if (lp_util_profile_dir (profile, options->profile_dir, sizeof options->profile_dir) != 0) {
        fprintf (stderr, "lpcontroller: profile path too long\n");
        return -1;
    }
    //  The profile's config file fills what the command line left unset.
    char path [1200], err [1400];
    lp_config_t *file = &options->file;
    file->hwm = -1;
    file->engine_memory_mb = -1;
    file->restart_engines = -1;
    file->log_max_mb = -1;
    file->log_keep = -1;
    file->engine_wait_sec = -1;
    snprintf (path, sizeof path, "%s/lpcontroller_config.lua", options->profile_dir);
    if (lp_config_load (path, file, err, sizeof err) != 0) {
        fprintf (stderr, "lpcontroller: %s\n", err);
        return -1;
    }
    if (!options->scheduler)
        options->scheduler = *file->scheduler? file->scheduler: "leastload";
    if (options->hwm < 0)
        options->hwm = file->hwm >= 0? file->hwm: LP_TASK_HWM;
    if (!options->heartbeat_msec)
        options->heartbeat_msec = file->heartbeat_msec? file->heartbeat_msec: LP_HEARTBEAT_MSEC;
    if (!options->max_misses)
        options->max_misses = file->max_misses? file->max_misses
                            : s_crowded (options)? LP_HEARTBEAT_CROWDED_MISSES
                            : LP_HEARTBEAT_MAX_MISSES;
    if (!options->ip)
        options->ip = *file->ip? file->ip: "127.0.0.1";
    if (!options->location && *file->location)
        options->location = file->location;
    if (options->engine_memory_mb < 0 && file->engine_memory_mb >= 0)
        options->engine_memory_mb = file->engine_memory_mb;
    if (file->restart_engines > 0)
        options->restart_engines = true;
    if (!options->replay_window_msec && file->replay_window_msec > 0)
        options->replay_window_msec = file->replay_window_msec;
    if (options->log_max_mb < 0)
        options->log_max_mb = file->log_max_mb >= 0? file->log_max_mb: LP_LOG_MAX_MB;
    if (options->log_keep < 0)
        options->log_keep = file->log_keep >= 0? file->log_keep: LP_LOG_KEEP;
    if (options->ready_timeout_sec < 0)
        options->ready_timeout_sec = file->ready_timeout_sec > 0? file->ready_timeout_sec
                                   : LP_READY_TIMEOUT_MSEC / 1000;
    if (options->ready_timeout_sec < 1) {
        fprintf (stderr, "lpcontroller: --ready-timeout must be at least 1 s\n");
        return -1;
    }
    if (options->engine_wait_sec < 0)
        options->engine_wait_sec = file->engine_wait_sec >= 0? file->engine_wait_sec
                                 : LP_ENGINE_LOST_EXIT_MSEC / 1000;
    if (s_resolve_engines (options) != 0)
        return -1;
    if (!options->dashboard && *file->dashboard)
        options->dashboard = file->dashboard;
    if (lp_scheme_from_name (options->scheduler) < 0) {
        fprintf (stderr, "lpcontroller: unknown scheduler '%s' (leastload, lru, plainrandom, "
                 "weighted, twobin)\n", options->scheduler);
        return -1;
    }
    if (options->heartbeat_msec < 10) {
        fprintf (stderr, "lpcontroller: the heartbeat period must be at least 10 ms\n");
        return -1;
    }
    s_warn_insecure (options);
    return 0;
}

//  The daemon holds nothing of its caller: stdin, stdout and stderr are
//  /dev/null until the log takes stdout and stderr (s_start_log), so a
//  caller reading our output (out=$(cluster.sh start)) sees its end when
//  the starting parent exits, whatever the daemon does next.
static void
s_detach_stdio (void)
{
    int null_fd = open ("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2 (null_fd, STDIN_FILENO);
        dup2 (null_fd, STDOUT_FILENO);
        dup2 (null_fd, STDERR_FILENO);
        if (null_fd > STDERR_FILENO)
            close (null_fd);
    }
}

//  The log thread; a daemon's stdout and stderr become its log file.
//  0, or -1 once the failure is reported.
static int
s_start_log (s_controller_t *self, const char *log_path)
{
    char err [1300];
    uint64_t max_bytes = (uint64_t) self->options->log_max_mb * 1024 * 1024;
    self->log = lp_log_new (max_bytes, (int) self->options->log_keep);
    if (!self->log) {
        s_report (self, "cannot start the log thread", false);
        return -1;
    }
    if (self->options->daemon && lp_log_own (self->log, log_path, err, sizeof err) != 0) {
        char line [1400];
        snprintf (line, sizeof line, "cannot write the log %s", err);
        s_report (self, line, false);
        return -1;
    }
    return 0;
}

//  The pid file: mode 0600 whatever the umask, written whole under a
//  temporary name and renamed, so a reader never sees half a number.
static void
s_write_pid_file (const char *pid_path)
{
    char tmp [1200];
    snprintf (tmp, sizeof tmp, "%s.tmp", pid_path);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char text [32];
    int len = snprintf (text, sizeof text, "%d\n", (int) getpid ());
    if (fd < 0 || fchmod (fd, 0600) != 0 || write (fd, text, (size_t) len) != len
    ||  close (fd) != 0 || rename (tmp, pid_path) != 0) {
        zsys_error ("cannot write the pid file %s: %s", pid_path, strerror (errno));
        unlink (tmp);
    }
}

//  Rewrites tcp://ip:port as tcp://location:port.
static void
s_located (const char *location, const char *endpoint, char *out, size_t size)
{
    const char *port = strrchr (endpoint, ':');
    snprintf (out, size, "tcp://%s%s", location, port? port: "");
}

//  Writes lp-client.json and lp-engine.json into folder: the hub's
//  endpoints, with location for the address. 0 / -1 with err.
//  The channels of each connection file and the hub's endpoint of each
static const char *engine_names [] = { "registration", "hb_ping", "hb_pong", "mux", "control", "iopub", "task" };
static const int engine_eps [] = { LP_HUB_REGISTRATION, LP_HUB_HB_PING, LP_HUB_HB_PONG,
                                   LP_HUB_MUX_ENGINE, LP_HUB_CONTROL_ENGINE,
                                   LP_HUB_IOPUB_ENGINE, LP_HUB_TASK_ENGINE };
static const char *client_names [] = { "registration", "mux", "control", "iopub", "notification", "task" };
static const int client_eps [] = { LP_HUB_REGISTRATION, LP_HUB_MUX_CLIENT, LP_HUB_CONTROL_CLIENT,
                                   LP_HUB_IOPUB_CLIENT, LP_HUB_NOTIFICATION, LP_HUB_TASK_CLIENT };

static int
s_write_files (const lp_hub_config_t *hub, const lp_keys_t *keys, const char *location,
               const char *folder, char *err, size_t errlen)
{
    char path [1200], located [256];
    int rc = 0;
    for (int kind = 0; kind < 2 && rc == 0; kind++) {
        lp_conn_t *conn = lp_conn_new (kind? "engine": "client");
        if (!conn) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
        lp_conn_set_key (conn, hub->key, hub->key_len);
        lp_conn_set_location (conn, location);
        if (keys->controller) {
            zcert_t *role = kind? keys->engine: keys->client;
            lp_conn_set_curve (conn, zcert_public_txt (keys->controller),
                               zcert_public_txt (role), zcert_secret_txt (role));
        }
        int count = kind? 7: 6;
        for (int i = 0; i < count; i++) {
            s_located (location, hub->endpoints [kind? engine_eps [i]: client_eps [i]],
                       located, sizeof located);
            lp_conn_set_endpoint (conn, kind? engine_names [i]: client_names [i], located);
        }
        snprintf (path, sizeof path, "%s/lp-%s.json", folder, kind? "engine": "client");
        rc = lp_conn_save (conn, path, err, errlen);
        lp_conn_destroy (&conn);
    }
    return rc;
}

//  True for an address only this host can reach (127.0.0.0/8, ::1,
//  localhost): the one case where the cluster may run without CURVE.
static bool
s_loopback (const char *ip)
{
    return strncmp (ip, "127.", 4) == 0 || streq (ip, "::1") || streq (ip, "[::1]")
        || streq (ip, "localhost");
}

//  A secure cluster (--secure, or by default a non-loopback --ip): the
//  CURVE certificates of <profile>/security, the ZAP handler that admits
//  the client's and the engine's keys, and every socket lp_bind_tcp
//  makes from now on a CURVE server. 0, or -1 once reported.
static int
s_start_security (s_controller_t *self, const char *folder)
{
    s_options_t *options = self->options;
    bool loopback = s_loopback (options->ip);
    if (options->secure < 0 && options->restore) {
        //  A restored controller is as secure as the one it replaces: its
        //  clients and engines keep the files (and keys) they have.
        char path [1200], why [600];
        snprintf (path, sizeof path, "%s/lp-client.json", folder);
        lp_conn_t *conn = lp_conn_load (path, why, sizeof why);
        if (conn)
            options->secure = lp_conn_secure (conn)? 1: 0;
        lp_conn_destroy (&conn);
    }
    if (options->secure < 0)
        options->secure = loopback? 0: 1;
    if (!options->secure) {
        if (!loopback)
            zsys_warning ("--insecure on %s, not a loopback address: anyone who reaches it "
                          "can read the traffic, run code on the engines and read their "
                          "output (see docs/operations.md, Security)", options->ip);
        return 0;
    }
    char err [1400], line [1500];
    if (lp_keys_load (&self->keys, folder, err, sizeof err) != 0) {
        snprintf (line, sizeof line, "cannot set up CURVE: %s", err);
        s_report (self, line, false);
        return -1;
    }
    self->zap = zactor_new (lp_zap_actor, &self->keys);
    if (!self->zap) {
        s_report (self, "cannot start the ZAP handler (inproc://zeromq.zap.01 taken?)", false);
        return -1;
    }
    lp_bind_set_curve (self->keys.controller);
    zsys_info ("secure: CURVE on every socket, server key %s; admitting the keys of %s/"
               "client.key and engine.key", zcert_public_txt (self->keys.controller), folder);
    return 0;
}

//  After the hub and its sockets are gone.
static void
s_stop_security (s_controller_t *self)
{
    zactor_destroy (&self->zap);
    lp_bind_set_curve (NULL);
    lp_keys_destroy (&self->keys);
}

//  --restore: the key and the ports of the connection files in folder
//  (a dead controller's), as endpoints on ip for the hub to bind again.
//  0, or -1 with err.
static int
s_read_files (lp_hub_config_t *hub, uint8_t *key, const char *ip, const char *folder,
              char *err, size_t errlen)
{
    char path [1200], why [600];
    for (int kind = 0; kind < 2; kind++) {
        snprintf (path, sizeof path, "%s/lp-%s.json", folder, kind? "engine": "client");
        lp_conn_t *conn = lp_conn_load (path, why, sizeof why);
        if (!conn) {
            snprintf (err, errlen, "--restore: %s (nothing to restore: start without --restore)",
                      why);
            return -1;
        }
        size_t key_len = 0;
        const uint8_t *file_key = lp_conn_key (conn, &key_len);
        int count = kind? 7: 6;
        int rc = file_key && key_len == LP_KEY_BYTES? 0: -1;
        if (rc == 0)
            memcpy (key, file_key, LP_KEY_BYTES);
        else
            snprintf (err, errlen, "--restore: %.900s: no key of %d bytes", path, LP_KEY_BYTES);
        for (int i = 0; i < count && rc == 0; i++) {
            const char *endpoint = lp_conn_endpoint (conn, kind? engine_names [i]: client_names [i]);
            const char *colon = endpoint? strrchr (endpoint, ':'): NULL;
            int port = colon? atoi (colon + 1): 0;
            if (port <= 0 || port > 65535) {
                snprintf (err, errlen, "--restore: %.900s: no port for %s", path,
                          kind? engine_names [i]: client_names [i]);
                rc = -1;
            }
            else
                snprintf (hub->endpoints [kind? engine_eps [i]: client_eps [i]], 128,
                          "tcp://%s:%d", ip, port);
        }
        lp_conn_destroy (&conn);
        if (rc != 0)
            return -1;
    }
    return 0;
}

//  --restore: what the dead controller left unfinished in the store ends
//  with ControllerRestarted before anything is served, but tasks with
//  retries left, which lp_fetch resubmits once the scheduler runs.
static void
s_restore_requests (s_controller_t *self)
{
    if (!self->store)
        return;
    int64_t resubmit = 0;
    int64_t count = lp_store_restore (self->store, LP_ENAME_CONTROLLER_RESTARTED,
        "the controller stopped (killed or crashed) before this request ended; "
        "restarted with --restore", &resubmit);
    if (count < 0)
        zsys_warning ("--restore: cannot read the unfinished requests from the task store");
    else
        zsys_info ("--restore: %lld unfinished request%s ended with %s, %lld task%s with "
                   "retries left resubmitted", (long long) count, count == 1? "": "s",
                   LP_ENAME_CONTROLLER_RESTARTED, (long long) resubmit, resubmit == 1? "": "s");
}

//  The task store <profile>/db/tasks.sqlite3, unless --no-db. 0, or -1
//  with err naming the path and the reason (unwritable folder, a file
//  that is not a database).
static int
s_open_store (s_controller_t *self, char *err, size_t errlen)
{
    s_options_t *options = self->options;
    if (options->no_db) {
        zsys_info ("task store off (--no-db)");
        return 0;
    }
    char dir [1100], path [1200];
    snprintf (dir, sizeof dir, "%s/db", options->profile_dir);
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        snprintf (err, errlen, "task store %s: cannot create the folder: %s", dir, strerror (errno));
        return -1;
    }
    snprintf (path, sizeof path, "%s/tasks.sqlite3", dir);
    size_t max_result = options->db_max_result >= 0? (size_t) options->db_max_result
                      : LP_STORE_MAX_RESULT;
    self->store = lp_store_new (path, max_result, err, errlen);
    if (!self->store)
        return -1;
    zsys_info ("task store %s (replies up to %zu bytes kept)", path, max_result);
    return 0;
}

//  --dashboard: the web dashboard (lp_dashboard.h), before the hub that
//  feeds it; with a token when the controller is secure. Its address goes
//  into the log and into security/dashboard.url. 0, or -1 once reported.
static int
s_start_dashboard (s_controller_t *self, const char *security)
{
    char store_path [1200], token_path [1200], err [1400];
    snprintf (store_path, sizeof store_path, "%s/db/tasks.sqlite3", self->options->profile_dir);
    snprintf (token_path, sizeof token_path, "%s/dashboard.token", security);
    lp_dashboard_config_t config = { self->options->dashboard,
                                     self->store? store_path: NULL,
                                     self->options->secure > 0? token_path: NULL };
    self->dashboard = lp_dashboard_new (&config, err, sizeof err);
    if (!self->dashboard) {
        s_report (self, err, false);
        return -1;
    }
    const char *url = lp_dashboard_url (self->dashboard);
    zsys_info ("dashboard on %s%s", url, config.token_path
               ? " (token in security/dashboard.token: open it with ?token=TOKEN)": "");
    if (!config.token_path && !lp_dashboard_is_loopback (self->dashboard))
        zsys_warning ("dashboard on %s without a token (the controller is not --secure): "
                      "anyone who reaches it sees the engines and the errors", url);
    char path [1200];
    snprintf (path, sizeof path, "%s/dashboard.url", security);
    FILE *file = fopen (path, "we");
    bool written = file && fprintf (file, "%s\n", url) > 0;
    if (file && fclose (file) != 0)
        written = false;
    if (!written)
        zsys_warning ("cannot write %s: %s", path, strerror (errno));
    return 0;
}

#define LP_RESTORE_SLOTS_MAX    4096    //  engine pid files looked for

//  The local engines: -n new ones, or with --restore the live ones of the
//  dead controller adopted (and new ones only in the slots whose engine
//  is gone). 0, or -1 with err.
static int
s_start_engines (s_controller_t *self, char *err, size_t errlen)
{
    if (self->remote && self->options->restore) {
        //  The dead controller's launcher engines re-register by
        //  themselves; its launcher.env stays for stop
        zsys_info ("--restore: expecting the %d engines of launcher %s to register again",
                   self->options->engines, self->options->kind);
        return 0;
    }
    if (self->remote)
        return lp_remote_start (self->remote, err, errlen);
    if (!self->options->restore) {
        int first = self->options->engines < LP_START_WINDOW? self->options->engines
                  : LP_START_WINDOW;
        self->windowed = first < self->options->engines;
        return lp_launcher_start (self->launcher, first, err, errlen);
    }
    //  Without -n: as many slots as the dead controller left pid files
    if (self->options->engines == 0) {
        char path [1200];
        for (int slot = 0; slot < LP_RESTORE_SLOTS_MAX; slot++) {
            snprintf (path, sizeof path, "%s/pid/engine-%d.pid", self->options->profile_dir, slot);
            if (access (path, F_OK) == 0)
                self->options->engines = slot + 1;
        }
    }
    int adopted = 0;
    if (lp_launcher_adopt (self->launcher, self->options->engines, &adopted, err, errlen) != 0)
        return -1;
    zsys_info ("--restore: %d live engine%s adopted, %d started", adopted,
               adopted == 1? "": "s", self->options->engines - adopted);
    return 0;
}

//  --daemon: the parent waits for the daemon's one-line report.
static int
s_wait_for_daemon (int fd, pid_t child, long ready_timeout_sec)
{
    char text [1300] = "";
    size_t used = 0;
    struct pollfd item = { fd, POLLIN, 0 };
    int64_t deadline = zclock_mono () + ready_timeout_sec * 1000 + 10000;
    while (used < sizeof text - 1) {
        int left = (int) (deadline - zclock_mono ());
        if (left <= 0 || poll (&item, 1, left) <= 0)
            break;
        ssize_t got = read (fd, text + used, sizeof text - 1 - used);
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    text [used] = 0;
    char *newline = strchr (text, '\n');
    if (newline)
        *newline = 0;
    if (strncmp (text, "ok ", 3) == 0) {
        printf ("lpcontroller: %s\n", text + 3);
        return 0;
    }
    if (strncmp (text, "error ", 6) == 0)
        fprintf (stderr, "lpcontroller: %s\n", text + 6);
    else
        fprintf (stderr, "lpcontroller: the controller (pid %d) did not report; see its log\n", (int) child);
    return 1;
}

int
main (int argc, char **argv)
{
    s_options_t options = { .hwm = -1, .engine_memory_mb = -1, .log_max_mb = -1,
                            .log_keep = -1, .engine_wait_sec = -1, .db_max_result = -1,
                            .engine_nice = -1,
                            .secure = -1, .engines_default = -1, .ready_timeout_sec = -1 };
    if (s_parse (argc, argv, &options) != 0)
        return 2;
    //  Large values cross as 1 MiB frames that ZeroMQ's I/O threads
    //  allocate: with glibc's adaptive threshold they come from a thread
    //  arena that keeps about 64 MB after a 100 MB transfer. Mapped
    //  singly, they go back to the kernel as soon as they are sent
    //  (RSS 72 -> 7.3 MB after a 100 MB push and pull; the price is
    //  their page faults, about 20 % more controller CPU per transfer).
    mallopt (M_MMAP_THRESHOLD, LP_CONTROLLER_MMAP_THRESHOLD);
    char err [1200];
    if (s_mkdirs (options.profile_dir, err, sizeof err) != 0) {
        fprintf (stderr, "lpcontroller: %s\n", err);
        return 1;
    }
    char pid_path [1100], security [1100], log_path [1100];
    snprintf (pid_path, sizeof pid_path, "%s/pid/lpcontroller.pid", options.profile_dir);
    snprintf (security, sizeof security, "%s/security", options.profile_dir);
    snprintf (log_path, sizeof log_path, "%s/log/lpcontroller.log", options.profile_dir);
    //  Before the fork: the caller's terminal hears why a start fails
    if (lp_log_check_writable (log_path, err, sizeof err) != 0) {
        fprintf (stderr, "lpcontroller: %s (the log folder must be writable)\n", err);
        return 1;
    }
    //  The launcher script, before the fork: a wrong kind is said on the
    //  caller's terminal
    char self_path [1024], script [1200] = "";
    ssize_t len = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path [len > 0? len: 0] = 0;
    char *slash = strrchr (self_path, '/');
    if (slash)
        *slash = 0;
    if (options.kind
    &&  lp_remote_find (options.kind, slash? self_path: ".", script, sizeof script,
                        err, sizeof err) != 0) {
        fprintf (stderr, "lpcontroller: --engines %s: %s\n", options.kind, err);
        return 1;
    }
    int running = s_running_pid (pid_path);
    if (running) {
        fprintf (stderr, "lpcontroller: a controller is already running for %s (pid %d)\n",
                 options.profile_dir, running);
        return 1;
    }
    s_controller_t self = { .options = &options, .ready_fd = -1, .started = zclock_mono () };

    if (options.daemon) {
        int fds [2];
        if (pipe2 (fds, O_CLOEXEC) != 0) {
            perror ("lpcontroller: pipe");
            return 1;
        }
        pid_t child = fork ();
        if (child < 0) {
            perror ("lpcontroller: fork");
            return 1;
        }
        if (child > 0) {
            close (fds [1]);
            return s_wait_for_daemon (fds [0], child, options.ready_timeout_sec);
        }
        close (fds [0]);
        self.ready_fd = fds [1];
        setsid ();
        s_detach_stdio ();
    }

    //  Signals first, before any thread exists, so every thread blocks them.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGCHLD);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    int signal_fd = signalfd (-1, &mask, SFD_CLOEXEC);
    zsys_handler_set (NULL);
    zsys_set_logident ("lpcontroller");
    //  Three I/O threads: the mux's (0), the scheduler's (1), and the
    //  heartbeats' (2, lp_hub.c), so that a flood on one port (a client
    //  pushing 100 MB, a map over 1024 engines, junk) does not hold up the
    //  pongs, and every pong is read by the same thread (the hub judges
    //  an engine's silence against the others').
    zsys_set_io_threads (LP_CONTROLLER_IO_THREADS);
    zsys_init ();
    int rc = 1;
    zloop_t *loop = NULL;
    if (s_start_log (&self, log_path) != 0)
        goto done;
    //  The replay guard's window (lp_guard_window_default reads it)
    if (options.replay_window_msec > 0) {
        char text [32];
        snprintf (text, sizeof text, "%ld", options.replay_window_msec);
        setenv ("LP_REPLAY_WINDOW_MSEC", text, 1);
    }

    //  A fresh key for this run, signing every channel.
    uint8_t key [LP_KEY_BYTES];
    char scratch [LP_ID_CHARS + 1];
    lp_util_random_id (scratch);            //  initialises libsodium
    randombytes_buf (key, sizeof key);
    if (s_start_security (&self, security) != 0)
        goto done;
    lp_hub_config_t config = { .ip = options.ip, .key = key, .key_len = sizeof key,
                               .heartbeat_msec = options.heartbeat_msec,
                               .max_misses = options.max_misses,
                               .scheme = lp_scheme_from_name (options.scheduler),
                               .hwm = options.hwm };
    //  --restore: the dead controller's key and ports instead
    if (options.restore
    &&  s_read_files (&config, key, options.ip, security, err, sizeof err) != 0) {
        s_report (&self, err, false);
        goto done;
    }
    //  The task store first: the hub's actors report to it.
    if (s_open_store (&self, err, sizeof err) != 0) {
        s_report (&self, err, false);
        goto done;
    }
    config.store = self.store;
    char url_path [1200];
    snprintf (url_path, sizeof url_path, "%s/dashboard.url", security);
    unlink (url_path);                  //  a dead controller's, if any
    if (options.dashboard && s_start_dashboard (&self, security) != 0)
        goto done;
    config.dashboard = self.dashboard? lp_dashboard_endpoint (self.dashboard): NULL;
    if (options.restore)
        s_restore_requests (&self);
    self.hub = zactor_new (lp_hub_actor, &config);
    if (!self.hub || !config.ok) {
        s_report (&self, self.hub? config.error: "cannot start the hub", false);
        goto done;
    }
    if (s_write_files (&config, &self.keys, options.location? options.location: options.ip,
                       security, err, sizeof err) != 0) {
        s_report (&self, err, false);
        goto done;
    }
    s_write_pid_file (pid_path);
    //  lpengine lives next to lpcontroller.
    char engine_path [1200], engine_file [1200], log_dir [1200];
    snprintf (engine_path, sizeof engine_path, "%s/lpengine", slash? self_path: ".");
    snprintf (engine_file, sizeof engine_file, "%s/lp-engine.json", security);
    snprintf (log_dir, sizeof log_dir, "%s/log", options.profile_dir);
    char pid_dir [1200];
    snprintf (pid_dir, sizeof pid_dir, "%s/pid", options.profile_dir);
    long memory_mb = options.engine_memory_mb >= 0? options.engine_memory_mb
                   : lp_launcher_default_memory_mb (options.engines);
    if (options.kind) {
        //  A launcher's engines: --memory-limit only when asked for (the
        //  share of this host's memory says nothing of another's)
        char engine_args [128], state_dir [1200];
        int used = snprintf (engine_args, sizeof engine_args, "--lost-exit %ld",
                             options.engine_wait_sec * 1000);
        if (options.engine_memory_mb >= 0)
            snprintf (engine_args + used, sizeof engine_args - (size_t) used,
                      " --memory-limit %ld", options.engine_memory_mb);
        snprintf (state_dir, sizeof state_dir, "%s/launcher", options.profile_dir);
        lp_remote_config_t remote = { options.kind, script, options.engines, 0, engine_path,
                                      engine_file, engine_args, options.profile_dir, state_dir,
                                      log_dir, options.launcher_opts,
                                      options.launcher_opt_count };
        self.remote = lp_remote_new (&remote);
        if (!self.remote) {
            s_report (&self, "out of memory", false);
            goto done;
        }
    }
    lp_launcher_config_t launch = { engine_path, engine_file, log_dir, pid_dir,
                                    memory_mb, options.engine_wait_sec * 1000,
                                    s_engine_nice (&options), self.log };
    if (options.engines > 0 && !options.kind)
        zsys_info ("local engines: memory cap %ld MB each%s, exit after %ld s without "
                   "the controller%s", memory_mb, memory_mb? "": " (none)",
                   options.engine_wait_sec,
                   options.restart_engines? ", restarted after a crash": "");
    self.launcher = lp_launcher_new (&launch);
    if (!self.launcher
    ||  s_start_engines (&self, err, sizeof err) != 0) {
        s_report (&self, self.launcher? err: "out of memory", false);
        goto done;
    }
    //  Waits for a signal, or the hub's SHUTDOWN.
    loop = zloop_new ();
    zmq_pollitem_t signal_item = { NULL, signal_fd, ZMQ_POLLIN, 0 };
    if (!loop) {
        s_report (&self, "out of memory", false);
        goto done;
    }
    zloop_poller (loop, &signal_item, s_on_signal, &self);
    zloop_reader (loop, zactor_sock (self.hub), s_on_hub, &self);
    zloop_timer (loop, (size_t) options.ready_timeout_sec * 1000, 1, s_on_ready_timeout, &self);
    zsock_send (self.hub, "si", "EXPECT", options.engines);
    zloop_start (loop);
    rc = self.failed? 1: 0;
done:
    //  The hub serves no one while the engines stop (as before a client's
    //  shutdown), then goes with its actors.
    if (self.hub && config.ok)
        zstr_send (self.hub, "STOP");
    if (self.launcher)
        lp_launcher_stop (self.launcher, LP_SHUTDOWN_GRACE_MSEC);
    lp_launcher_destroy (&self.launcher);
    free (self.restarts);
    if (self.remote) {
        int64_t t0 = zclock_mono ();
        if (lp_remote_stop (self.remote, LP_SHUTDOWN_GRACE_MSEC, err, sizeof err) == 0)
            zsys_info ("launcher %s: stop done in %lld ms", options.kind,
                       (long long) (zclock_mono () - t0));
        else
            zsys_error ("%s (cluster.sh stop runs it again)", err);
    }
    lp_remote_destroy (&self.remote);
    zactor_destroy (&self.hub);
    //  After the hub, which pushed to it
    lp_dashboard_destroy (&self.dashboard);
    s_stop_security (&self);
    zloop_destroy (&loop);
    sodium_memzero (key, sizeof key);
    //  After the hub: the actors' last records are queued; written now.
    lp_store_destroy (&self.store);
    lp_log_destroy (&self.log);         //  after the engines: their last words
    char path [1200];
    snprintf (path, sizeof path, "%s/lp-client.json", security);
    unlink (path);
    snprintf (path, sizeof path, "%s/lp-engine.json", security);
    unlink (path);
    snprintf (path, sizeof path, "%s/dashboard.url", security);
    unlink (path);
    if (s_running_pid (pid_path) == 0)
        unlink (pid_path);
    if (self.ready_fd >= 0)
        close (self.ready_fd);
    close (signal_fd);
    zsys_info ("stopped");
    return rc;
}
