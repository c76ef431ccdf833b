/*  =========================================================================
    lpengine - a luaparallel engine: one stateful Lua 5.4 interpreter
    serving docs/protocol.md

    lpengine --file lp-engine.json [-n N] [--memory-limit MB] [--lost-exit MSEC]
             [--stdout-max BYTES] [--pipe-log FILE [--log-max MB] [--log-keep N]] [--id N] [--log FILE] [--daemon --pid-file PATH] [--help]

    Memory: each Lua state is capped (protocol.md, MemoryError); without
    --memory-limit the cap is LP_ENGINE_MEMORY_SHARE % of physical memory
    divided by -n, and under MPI by the ranks on this host too (the
    controller passes --memory-limit for the local engines it launches).
    Exit statuses: 0 after a shutdown or signal, 1 on errors and after
    --lost-exit, LP_EXIT_STUCK (75) when a request stayed stuck inside a
    C call past its time limit or interrupt plus LP_STUCK_GRACE_MSEC
    (lp_heart.c).

    Design, one job per file:
      lpengine.c     this file: options, logging, daemon, the -n supervisor
                     (forks N engines, forwards SIGTERM/SIGINT, reaps them),
                     signal handling of an engine (a flag the loops poll)
      lp_engine.c    the lua_State: execute, apply, map, push, pull, clear,
                     print capture, error kinds, compiled-function cache,
                     memory cap allocator, interrupt hook
      lp_heart.c     heartbeat + control actor (own thread): pings echoed,
                     interrupt / shutdown served while Lua runs, controller
                     liveness
      lp_session.c   sockets, registration handshake, request loop,
                     reconnect with backoff, unregistration
    Uses src/common for connection files, signing (lp_wire), messages and
    Lua <-> value conversion.

    Threads: the main thread owns the Lua state and the registration, mux
    and iopub sockets; the heart thread owns hb and control sockets. The
    only thing they share is lp_engine_interrupt (mutex + atomics) and the
    actor pipe. SIGTERM/SIGINT are taken by the main thread only (blocked
    in every other thread); the handler sets a flag; the heart interrupts
    running Lua when it sees it; the main loop then unregisters and exits.
    Forking (daemon, supervisor) happens before any czmq/ZeroMQ thread
    exists.
    =========================================================================
*/
#include "lp_conn.h"
#include "lp_engine.h"
#include "lp_session.h"
#include "lp_log.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX_CHILDREN 4096             //  -n upper bound

static volatile sig_atomic_t s_stop = 0;
static pid_t s_children [S_MAX_CHILDREN];
static volatile sig_atomic_t s_nchildren = 0;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: lpengine --file lp-engine.json [-n N] [--memory-limit MB] [--lost-exit MSEC]\n"
        "                [--stdout-max BYTES] [--pipe-log FILE [--log-max MB] [--log-keep N]]\n"
        "                [--id N] [--log FILE] [--daemon --pid-file PATH] [--help]\n"
        "  --file FILE         engine connection file (written by lpcontroller)\n"
        "  -n N                run N engines under a supervisor process\n"
        "  --memory-limit MB   cap on each Lua state's memory (0 = none; default\n"
        "                      %d%% of physical memory divided by N)\n"
        "  --lost-exit MSEC    exit when no controller was heard for MSEC (default: never)\n"
        "  --stdout-max BYTES  most output kept per request for its reply; more is\n"
        "                      dropped and counted in a marker line (default %d MiB;\n"
        "                      also from $LP_ENGINE_STDOUT_MAX)\n"
        "  --id N              ask for engine id N when registering (without -n;\n"
        "                      under mpiexec the default is $LP_FIRST_ID + MPI rank)\n"
        "  --pipe-log FILE     stdout/stderr are a pipe to the controller, which\n"
        "                      writes FILE: should it die, write FILE directly,\n"
        "                      rotated past --log-max MB (default %d) keeping\n"
        "                      --log-keep N old files (default %d)\n"
        "  --log FILE          append log lines and output to FILE\n"
        "  --daemon            detach from the terminal (setsid)\n"
        "  --pid-file PATH     write the (supervisor's) pid there; removed on exit\n",
        LP_ENGINE_MEMORY_SHARE, LP_ENGINE_STDOUT_MAX / (1024 * 1024), LP_LOG_MAX_MB, LP_LOG_KEEP);
}

static void
s_on_signal (int signum)
{
    s_stop = 1;
    //  Supervisor: pass it on (kill is async-signal-safe)
    for (int i = 0; i < s_nchildren; i++)
        if (s_children [i] > 0)
            kill (s_children [i], signum);
}

static void
s_install_handlers (void)
{
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    action.sa_flags = 0;                //  no SA_RESTART: waits return EINTR
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
}

//  One engine in this process; returns the exit code
static int64_t s_lost_exit = 0;         //  --lost-exit ms, 0 = never
static int s_ask_id = -1;               //  --id, -1 = any
static long long s_stdout_max = -1;     //  --stdout-max bytes, -1 = default
static const char *s_pipe_log = NULL;   //  --pipe-log file, or NULL
static long s_log_max_mb = LP_LOG_MAX_MB;   //  --log-max, for --pipe-log
static long s_log_keep = LP_LOG_KEEP;   //  --log-keep, for --pipe-log
static int s_rank = -1;                 //  MPI rank (lp.rank), -1 = not under MPI
static int s_size = -1;                 //  MPI world size (lp.size), -1 = unknown

//  --------------------------------------------------------------------------
//  Under MPI. An engine is a plain process that mpiexec (or srun, hydra)
//  starts: it makes no MPI call and links no libmpi; it only reads the
//  rank and size its launcher puts in the environment, first found wins.

static const char *s_rank_vars [] = {
    "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL };
static const char *s_size_vars [] = {   //  PMIx puts no size in the environment
    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL };
static const char *s_local_size_vars [] = {    //  ranks on this host
    "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", NULL };

//  The value of the first variable of names that is set, as a number from
//  min to max: the number, -1 when none is set, -2 (after a message) when
//  the value is not such a number.
static long
s_env_number (const char **names, long min, long max)
{
    for (const char **name = names; *name; name++) {
        const char *text = getenv (*name);
        if (!text)
            continue;
        char *end = NULL;
        long value = strtol (text, &end, 10);
        if (!*text || *end || value < min || value > max) {
            fprintf (stderr, "lpengine: %s='%s' is not a number from %ld to %ld\n",
                     *name, text, min, max);
            return -2;
        }
        return value;
    }
    return -1;
}

//  Reads s_rank, s_size; without --id and -n, an MPI engine asks for id
//  LP_FIRST_ID (default 0) + rank. 0, or -1 after a message.
static int
s_mpi_place (long n)
{
    long rank = s_env_number (s_rank_vars, 0, LP_ENGINE_ID_MAX - 1);
    long size = s_env_number (s_size_vars, 1, LP_ENGINE_ID_MAX);
    if (rank == -2 || size == -2)
        return -1;
    if (rank < 0)
        return 0;                       //  not under MPI
    if (size > 0 && rank >= size) {
        fprintf (stderr, "lpengine: MPI rank %ld is not below the world size %ld\n", rank, size);
        return -1;
    }
    s_rank = (int) rank;
    s_size = (int) size;
    const char *first_names [] = { "LP_FIRST_ID", NULL };
    long first = s_env_number (first_names, 0, LP_ENGINE_ID_MAX - 1);
    if (first == -2)
        return -1;
    if (s_ask_id < 0 && n <= 1) {
        long id = (first > 0? first: 0) + rank;
        if (id >= LP_ENGINE_ID_MAX) {
            fprintf (stderr, "lpengine: LP_FIRST_ID + MPI rank = %ld, past the largest id %d\n",
                     id, LP_ENGINE_ID_MAX - 1);
            return -1;
        }
        s_ask_id = (int) id;
    }
    return 0;
}

//  A byte count from an option or the environment; -1 when not one
static long long
s_bytes (const char *text)
{
    char *end = NULL;
    long long bytes = text && *text? strtoll (text, &end, 10): -1;
    return end && !*end && bytes >= 0? bytes: -1;
}

static int
s_engine_main (const char *file, lp_conn_t **conn_p, size_t memory_limit)
{
    //  czmq must not install its handlers; ZeroMQ's threads are created
    //  with our signals blocked so only the main thread gets them.
    zsys_handler_set (NULL);
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    zsys_init ();
    s_install_handlers ();
    //  --pipe-log: the watcher (and the log thread it may start) block
    //  our signals too
    if (s_pipe_log && lp_log_adopt_on_loss (s_pipe_log, (uint64_t) s_log_max_mb * 1024 * 1024,
                                            (int) s_log_keep) != 0)
        fprintf (stderr, "lpengine: --pipe-log %s: stdout is not a pipe; ignored\n", s_pipe_log);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    zsys_set_logstream (stderr);
    char ident [32];
    snprintf (ident, sizeof ident, "lpengine[pid %d]", (int) getpid ());
    zsys_set_logident (ident);

    if (memory_limit)
        zsys_info ("Lua memory cap %zu MB", memory_limit / (1024 * 1024));
    lp_engine_t *engine = lp_engine_new (memory_limit);
    if (!engine) {
        zsys_error ("cannot create the Lua state");
        lp_conn_destroy (conn_p);
        return 1;
    }
    if (s_stdout_max >= 0)
        lp_engine_set_stdout_max (engine, (size_t) s_stdout_max);
    lp_session_t *session = lp_session_new (file, conn_p, engine);
    if (!session) {
        lp_engine_destroy (&engine);
        lp_conn_destroy (conn_p);
        return 1;
    }
    lp_session_set_lost_exit (session, s_lost_exit);
    if (s_rank >= 0) {
        lp_engine_set_rank (engine, s_rank, s_size);
        if (s_size > 0)
            zsys_info ("MPI rank %d of %d", s_rank, s_size);
        else
            zsys_info ("MPI rank %d (world size unknown)", s_rank);
    }
    if (s_ask_id >= 0)
        lp_session_set_id (session, s_ask_id);
    int rc = lp_session_run (session, &s_stop);
    lp_session_destroy (&session);
    lp_engine_destroy (&engine);
    zsys_shutdown ();
    lp_log_adopted_flush ();
    return rc;
}

//  Runs n engine children, forwards signals, reaps them
static int
s_supervise (int n, const char *file, lp_conn_t **conn_p, size_t memory_limit)
{
    s_install_handlers ();
    //  Block signals while forking so the table is complete when used
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork ();
        if (pid < 0) {
            fprintf (stderr, "lpengine: fork: %s\n", strerror (errno));
            break;
        }
        if (pid == 0) {
            s_nchildren = 0;
            pthread_sigmask (SIG_SETMASK, &old, NULL);
            _exit (s_engine_main (file, conn_p, memory_limit));
        }
        s_children [s_nchildren] = pid;
        s_nchildren = s_nchildren + 1;
    }
    lp_conn_destroy (conn_p);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (s_stop)                         //  a signal came while forking
        for (int i = 0; i < s_nchildren; i++)
            kill (s_children [i], SIGTERM);
    int alive = s_nchildren;
    int failed = 0;
    while (alive > 0) {
        int status;
        pid_t pid = waitpid (-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;                      //  ECHILD
        }
        for (int i = 0; i < s_nchildren; i++)
            if (s_children [i] == pid) {
                s_children [i] = 0;
                alive--;
                if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
                    failed++;
            }
    }
    return failed? 1: 0;
}

int
main (int argc, char *argv [])
{
    //  Whoever started us may have leaked descriptors (a daemon's report
    //  pipe, say): holding them would keep its reader waiting for EOF.
    closefrom (STDERR_FILENO + 1);
    const char *file = NULL;
    const char *log = NULL;
    const char *pid_file = NULL;
    bool daemon = false;
    long n = 0;
    long memory_mb = -1;                //  -1: the default share
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        bool has_value = i + 1 < argc;
        char *end = NULL;
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (stdout);
            return 0;
        }
        else
        if (streq (arg, "--file") && has_value)
            file = argv [++i];
        else
        if (streq (arg, "--log") && has_value)
            log = argv [++i];
        else
        if (streq (arg, "--pid-file") && has_value)
            pid_file = argv [++i];
        else
        if (streq (arg, "--daemon"))
            daemon = true;
        else
        if (streq (arg, "-n") && has_value) {
            n = strtol (argv [++i], &end, 10);
            if (*end || n < 1 || n > S_MAX_CHILDREN) {
                fprintf (stderr, "lpengine: -n wants a number from 1 to %d\n", S_MAX_CHILDREN);
                return 1;
            }
        }
        else
        if (streq (arg, "--memory-limit") && has_value) {
            memory_mb = strtol (argv [++i], &end, 10);
            if (*end || memory_mb < 0 || memory_mb > 1024L * 1024) {
                fprintf (stderr, "lpengine: --memory-limit wants megabytes (0 = none)\n");
                return 1;
            }
        }
        else
        if (streq (arg, "--id") && has_value) {
            long id = strtol (argv [++i], &end, 10);
            if (*end || id < 0 || id >= LP_ENGINE_ID_MAX) {
                fprintf (stderr, "lpengine: --id wants an engine id from 0 to %d\n",
                         LP_ENGINE_ID_MAX - 1);
                return 1;
            }
            s_ask_id = (int) id;
        }
        else
        if (streq (arg, "--lost-exit") && has_value) {
            long long msec = strtoll (argv [++i], &end, 10);
            if (*end || msec < 0) {
                fprintf (stderr, "lpengine: --lost-exit wants milliseconds (0 = never)\n");
                return 1;
            }
            s_lost_exit = (int64_t) msec;
        }
        else
        if (streq (arg, "--pipe-log") && has_value)
            s_pipe_log = argv [++i];
        else
        if ((streq (arg, "--log-max") || streq (arg, "--log-keep")) && has_value) {
            long value = strtol (argv [++i], &end, 10);
            if (*end || value < 0 || value > 1000000) {
                fprintf (stderr, "lpengine: %s wants a number >= 0\n", arg);
                return 1;
            }
            *(streq (arg, "--log-max")? &s_log_max_mb: &s_log_keep) = value;
        }
        else
        if (streq (arg, "--stdout-max") && has_value) {
            s_stdout_max = s_bytes (argv [++i]);
            if (s_stdout_max < 0) {
                fprintf (stderr, "lpengine: --stdout-max wants a number of bytes\n");
                return 1;
            }
        }
        else {
            fprintf (stderr, "lpengine: unknown or incomplete option '%s'\n", arg);
            s_usage (stderr);
            return 1;
        }
    }
    if (s_stdout_max < 0 && getenv ("LP_ENGINE_STDOUT_MAX")) {
        s_stdout_max = s_bytes (getenv ("LP_ENGINE_STDOUT_MAX"));
        if (s_stdout_max < 0) {
            fprintf (stderr, "lpengine: LP_ENGINE_STDOUT_MAX wants a number of bytes\n");
            return 1;
        }
    }
    if (s_ask_id >= 0 && n > 1) {
        fprintf (stderr, "lpengine: --id names one engine; it cannot go with -n %ld\n", n);
        return 1;
    }
    if (s_mpi_place (n) != 0)
        return 1;
    if (!file) {
        fprintf (stderr, "lpengine: --file is required\n");
        s_usage (stderr);
        return 1;
    }
    if (sodium_init () < 0) {
        fprintf (stderr, "lpengine: cannot initialise libsodium\n");
        return 1;
    }
    char err [512];
    lp_conn_t *conn = lp_conn_load (file, err, sizeof err);
    if (!conn) {
        fprintf (stderr, "%s\n", err);
        return 1;
    }
    if (!streq (lp_conn_kind (conn), "engine")) {
        fprintf (stderr, "%s: this is a %s connection file; engines need the engine file "
                 "(security/lp-engine.json)\n", file, lp_conn_kind (conn));
        lp_conn_destroy (&conn);
        return 1;
    }
    //  The connection file is re-read on reconnects: keep an absolute path
    char *abs_file = realpath (file, NULL);
    if (abs_file)
        file = abs_file;

    //  Lua's io.read must never block on a terminal
    int null_fd = open ("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2 (null_fd, STDIN_FILENO);
        if (daemon && !log) {
            dup2 (null_fd, STDOUT_FILENO);
            dup2 (null_fd, STDERR_FILENO);
        }
        if (null_fd > STDERR_FILENO)
            close (null_fd);
    }
    if (log) {
        if (!freopen (log, "a", stdout) || !freopen (log, "a", stderr)) {
            fprintf (stderr, "lpengine: cannot open log %s: %s\n", log, strerror (errno));
            lp_conn_destroy (&conn);
            free (abs_file);
            return 1;
        }
        setvbuf (stdout, NULL, _IOLBF, 0);
        setvbuf (stderr, NULL, _IOLBF, 0);
    }
    if (daemon) {
        pid_t pid = fork ();
        if (pid < 0) {
            fprintf (stderr, "lpengine: fork: %s\n", strerror (errno));
            lp_conn_destroy (&conn);
            free (abs_file);
            return 1;
        }
        if (pid > 0) {
            lp_conn_destroy (&conn);
            free (abs_file);
            _exit (0);
        }
        setsid ();
    }
    if (pid_file) {
        FILE *out = fopen (pid_file, "w");
        if (!out) {
            fprintf (stderr, "lpengine: cannot write %s: %s\n", pid_file, strerror (errno));
            lp_conn_destroy (&conn);
            free (abs_file);
            return 1;
        }
        fprintf (out, "%d\n", (int) getpid ());
        fclose (out);
    }
    pid_t main_pid = getpid ();
    size_t memory_limit = (size_t) memory_mb * 1024 * 1024;
    if (memory_mb < 0) {
        long pages = sysconf (_SC_PHYS_PAGES);
        long page_size = sysconf (_SC_PAGESIZE);
        uint64_t physical = pages > 0 && page_size > 0? (uint64_t) pages * (uint64_t) page_size: 0;
        //  The engines that share this host: -n, times the MPI ranks here
        long local = s_rank >= 0? s_env_number (s_local_size_vars, 1, LP_ENGINE_ID_MAX): -1;
        uint64_t sharers = (uint64_t) (n > 1? n: 1) * (uint64_t) (local > 0? local: 1);
        memory_limit = (size_t) (physical / 100 * LP_ENGINE_MEMORY_SHARE / sharers);
    }
    int rc = n > 1? s_supervise ((int) n, file, &conn, memory_limit)
                  : s_engine_main (file, &conn, memory_limit);
    if (pid_file && getpid () == main_pid)
        unlink (pid_file);
    free (abs_file);
    return rc;
}
