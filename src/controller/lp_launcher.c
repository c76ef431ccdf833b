/*  =========================================================================
    lp_launcher.c - starts local engines as children and reaps them

    The controller blocks SIGCHLD and reads it from a signalfd in its
    reactor; each time, lp_launcher_reap collects every exited child with
    waitpid(WNOHANG) and says how it ended. Stopping sends SIGTERM (an
    engine unregisters and exits), waits for SIGCHLD with sigtimedwait up to
    a grace period, and SIGKILLs what is left: no orphan is ever left to
    PID 1, which on these machines reaps only every second or so.
    =========================================================================
*/
#include "lp_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;                          //  0 once reaped
    int index;                          //  engine-<index>.log
} s_child_t;

struct _lp_launcher_t {
    char *engine_path;                  //  lpengine binary
    char *engine_file;                  //  lp-engine.json
    char *log_dir;                      //  where logs go
    s_child_t *children;                //  every child started
    size_t count;                       //  children started
    size_t capacity;                    //  slots in children
};

lp_launcher_t *
lp_launcher_new (const char *engine_path, const char *engine_file, const char *log_dir)
{
    lp_launcher_t *self = (lp_launcher_t *) calloc (1, sizeof (lp_launcher_t));
    if (!self)
        return NULL;
    self->engine_path = strdup (engine_path);
    self->engine_file = strdup (engine_file);
    self->log_dir = strdup (log_dir);
    if (!self->engine_path || !self->engine_file || !self->log_dir)
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
        free (self->children);
        free (self);
        *self_p = NULL;
    }
}

int
lp_launcher_start (lp_launcher_t *self, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (self->count == self->capacity) {
            size_t capacity = self->capacity * 2 + 8;
            s_child_t *grown = (s_child_t *) realloc (self->children, capacity * sizeof *grown);
            if (!grown) {
                snprintf (err, errlen, "out of memory");
                return -1;
            }
            self->children = grown;
            self->capacity = capacity;
        }
        int index = (int) self->count;
        char log_path [1024];
        snprintf (log_path, sizeof log_path, "%s/engine-%d.log", self->log_dir, index);
        char *argv [] = { "lpengine", "--file", self->engine_file, NULL };
        pid_t pid = fork ();
        if (pid < 0) {
            snprintf (err, errlen, "cannot start engine %d: fork: %s", index, strerror (errno));
            return -1;
        }
        if (pid == 0) {
            //  Child: only async-signal-safe calls until exec.
            sigset_t none;
            sigemptyset (&none);
            sigprocmask (SIG_SETMASK, &none, NULL);
            setpgid (0, 0);             //  a terminal's Ctrl-C is not for engines
            int in = open ("/dev/null", O_RDONLY);
            int out = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (in >= 0)
                dup2 (in, 0);
            if (out >= 0) {
                dup2 (out, 1);
                dup2 (out, 2);
            }
            execv (self->engine_path, argv);
            _exit (127);
        }
        self->children [self->count].pid = pid;
        self->children [self->count].index = index;
        self->count++;
    }
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
        pid_t pid = waitpid (self->children [i].pid, &status, WNOHANG);
        if (pid == self->children [i].pid) {
            char reason [96];
            s_describe (status, reason, sizeof reason);
            self->children [i].pid = 0;
            reaped++;
            if (fn)
                fn ((int) pid, self->children [i].index, reason, arg);
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
