/*  =========================================================================
    lp_launcher.c - starts local engines as children and reaps them

    The controller blocks SIGCHLD and reads it from a signalfd in its
    reactor; each time, lp_launcher_reap collects every exited child with
    waitpid(WNOHANG) and says how it ended. Stopping sends SIGTERM (an
    engine unregisters and exits), waits for SIGCHLD with sigtimedwait up to
    a grace period, and SIGKILLs what is left: no orphan is ever left to
    PID 1, which on these machines reaps only every second or so.

    Every engine runs in a slot k: `lpengine --file F --id k --memory-limit
    MB --lost-exit MSEC`, its stdout and stderr a pipe that the log
    thread copies into log/engine-<k>.log (rotated by size; --pipe-log
    tells the engine to write that file itself should the controller
    die), its pid in
    pid/engine-<k>.pid while it runs. The pid files are for
    `cluster.sh stop` after the controller itself was killed (-9): the
    engines would otherwise run until --lost-exit. A restart (the
    controller decides when: lpcontroller.c) reuses the slot, asking for
    the engine's old id.

    lp_launcher_adopt (lpcontroller --restore): an engine whose pid file
    names a live lpengine process was started by a controller that died;
    it keeps running (it re-registers by itself) and the slot adopts it.
    It is not our child: its end is seen by polling its pid (a zombie
    counts as ended: init reaps orphans late), stop signals it by pid.
    =========================================================================
*/
#include "lp_launcher.h"
#include "lp_defaults.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;                          //  0 once reaped
    int64_t started;                    //  s_mono_msec at the last start
    int quick_exits;                    //  quick exits in a row
    bool adopted;                       //  a dead controller's engine (not
                                        //  our child: watched by pid)
} s_child_t;

struct _lp_launcher_t {
    char *engine_path;                  //  lpengine binary
    char *engine_file;                  //  lp-engine.json
    char *log_dir;                      //  where logs go
    char *pid_dir;                      //  where pid files go
    long memory_mb;                     //  --memory-limit, < 0 none passed
    long lost_exit_msec;                //  --lost-exit, 0 none passed
    lp_log_t *log;                      //  engine output through it, or NULL
    s_child_t *children;                //  one per slot
    size_t count;                       //  slots used
    size_t capacity;                    //  slots allocated
};

lp_launcher_t *
lp_launcher_new (const lp_launcher_config_t *config)
{
    lp_launcher_t *self = (lp_launcher_t *) calloc (1, sizeof (lp_launcher_t));
    if (!self)
        return NULL;
    self->engine_path = strdup (config->engine_path);
    self->engine_file = strdup (config->engine_file);
    self->log_dir = strdup (config->log_dir);
    self->pid_dir = strdup (config->pid_dir);
    self->memory_mb = config->memory_mb;
    self->lost_exit_msec = config->lost_exit_msec;
    self->log = config->log;
    if (!self->engine_path || !self->engine_file || !self->log_dir || !self->pid_dir)
        lp_launcher_destroy (&self);
    return self;
}

void
lp_launcher_destroy (lp_launcher_t **self_p)
{
    lp_launcher_t *self = *self_p;
    if (self) {
        free (self->engine_path);
        free (self->engine_file);
        free (self->log_dir);
        free (self->pid_dir);
        free (self->children);
        free (self);
        *self_p = NULL;
    }
}

long
lp_launcher_default_memory_mb (int n)
{
    long pages = sysconf (_SC_PHYS_PAGES);
    long page_size = sysconf (_SC_PAGESIZE);
    uint64_t physical = pages > 0 && page_size > 0? (uint64_t) pages * (uint64_t) page_size: 0;
    uint64_t share = physical / 100 * LP_ENGINE_MEMORY_SHARE / (uint64_t) (n > 1? n: 1);
    long mb = (long) (share / (1024 * 1024));
    return mb > 0? mb: 1;
}

static void
s_pid_path (lp_launcher_t *self, int slot, char *out, size_t size)
{
    snprintf (out, size, "%s/engine-%d.pid", self->pid_dir, slot);
}

static int64_t s_mono_msec (void);
#define LP_ADOPTED_POLL_MSEC    10      //  how often stop looks at adopted pids

//  Forks and execs lpengine in slot, asking for id. 0 / -1 with err.
static int
s_spawn (lp_launcher_t *self, int slot, int id, char *err, size_t errlen)
{
    char log_path [1024], id_text [16], memory_text [24], lost_text [24];
    snprintf (log_path, sizeof log_path, "%s/engine-%d.log", self->log_dir, slot);
    snprintf (id_text, sizeof id_text, "%d", id);
    snprintf (memory_text, sizeof memory_text, "%ld", self->memory_mb);
    snprintf (lost_text, sizeof lost_text, "%ld", self->lost_exit_msec);
    char max_text [24], keep_text [24];
    char *argv [20];
    int argc = 0;
    argv [argc++] = "lpengine";
    argv [argc++] = "--file";
    argv [argc++] = self->engine_file;
    argv [argc++] = "--id";
    argv [argc++] = id_text;
    if (self->memory_mb >= 0) {
        argv [argc++] = "--memory-limit";
        argv [argc++] = memory_text;
    }
    if (self->lost_exit_msec > 0) {
        argv [argc++] = "--lost-exit";
        argv [argc++] = lost_text;
    }
    if (self->log) {
        //  Should the controller die, the engine writes its log itself
        uint64_t max_bytes;
        int keep;
        lp_log_settings (self->log, &max_bytes, &keep);
        snprintf (max_text, sizeof max_text, "%llu",
                  (unsigned long long) (max_bytes / (1024 * 1024)));
        snprintf (keep_text, sizeof keep_text, "%d", keep);
        argv [argc++] = "--pipe-log";
        argv [argc++] = log_path;
        argv [argc++] = "--log-max";
        argv [argc++] = max_text;
        argv [argc++] = "--log-keep";
        argv [argc++] = keep_text;
    }
    argv [argc] = NULL;
    //  Output: a pipe to the log thread, so the log rotates and a chatty
    //  engine waits instead of filling the disk
    int out_pipe [2] = { -1, -1 };
    if (self->log && pipe2 (out_pipe, O_CLOEXEC) != 0) {
        snprintf (err, errlen, "cannot start engine %d: pipe: %s", slot, strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (err, errlen, "cannot start engine %d: fork: %s", slot, strerror (errno));
        if (out_pipe [0] >= 0) {
            close (out_pipe [0]);
            close (out_pipe [1]);
        }
        return -1;
    }
    if (pid == 0) {
        //  Child: only async-signal-safe calls until exec.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        setpgid (0, 0);             //  a terminal's Ctrl-C is not for engines
        int in = open ("/dev/null", O_RDONLY);
        int out = out_pipe [1] >= 0? out_pipe [1]
                : open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in >= 0)
            dup2 (in, 0);
        if (out >= 0) {
            dup2 (out, 1);
            dup2 (out, 2);
        }
        execv (self->engine_path, argv);
        _exit (127);
    }
    if (out_pipe [0] >= 0) {
        close (out_pipe [1]);
        char log_err [1200];
        if (lp_log_follow (self->log, out_pipe [0], log_path, log_err, sizeof log_err) != 0)
            fprintf (stderr, "lpcontroller: engine %d's output is lost: %s\n", slot, log_err);
    }
    self->children [slot].pid = pid;
    self->children [slot].started = s_mono_msec ();
    //  The pid file: written whole under a temporary name, then renamed,
    //  so a reader never sees half a number
    char path [1100], tmp [1120];
    s_pid_path (self, slot, path, sizeof path);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    //  (mode 0600 whatever the umask)
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char text [32];
    int len = snprintf (text, sizeof text, "%d\n", (int) pid);
    if (fd < 0 || fchmod (fd, 0600) != 0 || write (fd, text, (size_t) len) != len
    ||  close (fd) != 0 || rename (tmp, path) != 0) {
        //  The engine runs all the same; only a crashed controller's
        //  cleanup is harder. Say so in the controller's log.
        fprintf (stderr, "lpcontroller: cannot write %s: %s\n", path, strerror (errno));
        unlink (tmp);
    }
    return 0;
}

//  Room for one more child in the table; 0, or -1 with err filled.
static int
s_room (lp_launcher_t *self, char *err, size_t errlen)
{
    if (self->count < self->capacity)
        return 0;
    size_t capacity = self->capacity * 2 + 8;
    s_child_t *grown = (s_child_t *) realloc (self->children, capacity * sizeof *grown);
    if (!grown) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    self->children = grown;
    self->capacity = capacity;
    return 0;
}

int
lp_launcher_start (lp_launcher_t *self, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (s_room (self, err, errlen) != 0)
            return -1;
        int slot = (int) self->count;
        self->children [slot] = (s_child_t) { 0, 0, 0, false };
        self->count++;
        if (s_spawn (self, slot, slot, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int
lp_launcher_restart (lp_launcher_t *self, int slot, int id, char *err, size_t errlen)
{
    if (slot < 0 || (size_t) slot >= self->count || self->children [slot].pid > 0) {
        snprintf (err, errlen, "engine slot %d is not free", slot);
        return -1;
    }
    if (self->children [slot].quick_exits >= LP_QUICK_EXITS_MAX) {
        snprintf (err, errlen, "engine %d exited %d times in a row within %d s of starting: "
                  "not restarted (see log/engine-%d.log)", slot, LP_QUICK_EXITS_MAX,
                  LP_QUICK_EXIT_MSEC / 1000, slot);
        return -1;
    }
    return s_spawn (self, slot, id >= 0? id: slot, err, errlen);
}

int
lp_launcher_slot (lp_launcher_t *self, int pid)
{
    for (size_t k = 0; self && pid > 0 && k < self->count; k++)
        if (self->children [k].pid == pid && !self->children [k].adopted)
            return (int) k;
    return -1;
}

bool
lp_launcher_pid_alive (int pid)
{
    if (pid <= 0 || kill (pid, 0) != 0)
        return false;
    char path [64], text [512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t got = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [got] = 0;
    const char *paren = strrchr (text, ')');
    return !(paren && paren [1] == ' ' && (paren [2] == 'Z' || paren [2] == 'X'));
}

int
lp_launcher_pid_read (const char *pid_path)
{
    FILE *file = fopen (pid_path, "r");
    int pid = 0;
    if (!file)
        return 0;
    if (fscanf (file, "%d", &pid) != 1 || pid < 0)
        pid = 0;
    fclose (file);
    return pid;
}

//  The lpengine process a pid file names, alive; 0 when none
static pid_t
s_live_engine (const char *pid_path)
{
    int pid = lp_launcher_pid_read (pid_path);
    if (pid <= 0 || !lp_launcher_pid_alive (pid))
        return 0;
    //  Not another program that got the number since
    char path [64], cmdline [4096];
    snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *file = fopen (path, "r");
    size_t got = file? fread (cmdline, 1, sizeof cmdline - 1, file): 0;
    if (file)
        fclose (file);
    cmdline [got] = 0;
    const char *base = strrchr (cmdline, '/');
    return strncmp (base? base + 1: cmdline, "lpengine", 8) == 0? (pid_t) pid: 0;
}

int
lp_launcher_adopt (lp_launcher_t *self, int n, int *adopted_p, char *err, size_t errlen)
{
    int adopted = 0;
    for (int i = 0; i < n; i++) {
        char path [1100];
        s_pid_path (self, (int) self->count, path, sizeof path);
        pid_t pid = s_live_engine (path);
        if (!pid) {
            if (lp_launcher_start (self, 1, err, errlen) != 0)
                return -1;
            continue;
        }
        if (s_room (self, err, errlen) != 0)
            return -1;
        self->children [self->count++] = (s_child_t) { pid, s_mono_msec (), 0, true };
        adopted++;
    }
    if (adopted_p)
        *adopted_p = adopted;
    return 0;
}

static void
s_describe (int status, char *out, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (out, size, "process exited (signal %d)", WTERMSIG (status));
    else
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
        snprintf (out, size, "process could not start (exit status 127)");
    else
    if (WIFEXITED (status) && WEXITSTATUS (status) == LP_EXIT_STUCK)
        snprintf (out, size, "request stuck inside a C call past its time limit or interrupt "
                             "(exit status %d)", LP_EXIT_STUCK);
    else
        snprintf (out, size, "process exited (status %d)", WEXITSTATUS (status));
}

int
lp_launcher_reap (lp_launcher_t *self, lp_launcher_exit_fn *fn, void *arg)
{
    int reaped = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (self->children [i].pid <= 0)
            continue;
        int status = 0;
        pid_t pid = self->children [i].adopted
                  ? (lp_launcher_pid_alive (self->children [i].pid)? 0: self->children [i].pid)
                  : waitpid (self->children [i].pid, &status, WNOHANG);
        if (pid == self->children [i].pid) {
            //  An adopted engine's status is not ours to know
            bool adopted = self->children [i].adopted;
            self->children [i].adopted = false;
            char reason [128], path [1100];
            if (adopted)
                snprintf (reason, sizeof reason, "process exited (adopted: status unknown)");
            else
                s_describe (status, reason, sizeof reason);
            self->children [i].pid = 0;
            if (s_mono_msec () - self->children [i].started < LP_QUICK_EXIT_MSEC)
                self->children [i].quick_exits++;
            else
                self->children [i].quick_exits = 0;
            s_pid_path (self, (int) i, path, sizeof path);
            unlink (path);
            reaped++;
            if (fn)
                fn ((int) pid, (int) i, status, reason, arg);
        }
    }
    return reaped;
}

size_t
lp_launcher_running (lp_launcher_t *self)
{
    size_t running = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->children [i].pid > 0)
            running++;
    return running;
}

static int64_t
s_mono_msec (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Waits for children to exit until deadline (SIGCHLD blocked by caller).
static void
s_wait_until (lp_launcher_t *self, int64_t deadline)
{
    sigset_t chld;
    sigemptyset (&chld);
    sigaddset (&chld, SIGCHLD);
    lp_launcher_reap (self, NULL, NULL);
    while (lp_launcher_running (self) > 0) {
        int64_t left = deadline - s_mono_msec ();
        if (left <= 0)
            break;
        //  Adopted engines send no SIGCHLD: their pids are polled
        bool adopted = false;
        for (size_t i = 0; i < self->count; i++)
            adopted |= self->children [i].pid > 0 && self->children [i].adopted;
        if (adopted && left > LP_ADOPTED_POLL_MSEC)
            left = LP_ADOPTED_POLL_MSEC;
        struct timespec timeout = { left / 1000, (left % 1000) * 1000000 };
        sigtimedwait (&chld, NULL, &timeout);
        lp_launcher_reap (self, NULL, NULL);
    }
}

void
lp_launcher_stop (lp_launcher_t *self, int grace_msec)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->children [i].pid > 0)
            kill (self->children [i].pid, SIGTERM);
    s_wait_until (self, s_mono_msec () + grace_msec);
    for (size_t i = 0; i < self->count; i++)
        if (self->children [i].pid > 0)
            kill (self->children [i].pid, SIGKILL);
    s_wait_until (self, s_mono_msec () + grace_msec);
}
