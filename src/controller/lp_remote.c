/*  =========================================================================
    lp_remote.c - runs a launcher script (lp-launch-KIND) for the controller

    The script is a child of the controller like a local engine, so its end
    is seen at SIGCHLD (lp_remote_reap from the controller's reactor). Its
    environment is built before the fork (after it, only async-signal-safe
    calls: the controller has threads), from the controller's own
    environment minus every LP_ variable, plus the launcher's. Its output
    is a plain file, log/launcher.log, opened for appending: a script
    outlives a controller killed -9 (it may be the one that `cluster.sh
    stop` runs), and a file has no reader to lose. The offset of the file
    at start marks where this run's output begins, for lp_remote_tail.

    The script runs in a process group of its own: on stop, after `stop`
    has ended the engines its own way (by pid over ssh, scancel, ...), what
    is left of `start` (an mpiexec, ssh clients) gets SIGTERM as a group,
    then SIGKILL after the grace period.
    =========================================================================
*/
#include "lp_prelude.h"
#include "lp_remote.h"

#include <ctype.h>
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

extern char **environ;

struct _lp_remote_t {
    char *kind;                         //  the launcher's kind
    char *script;                       //  lp-launch-KIND
    char *state_dir;                    //  LP_STATE_DIR
    char *log_path;                     //  log/launcher.log
    char **envp;                        //  the script's environment
    size_t env_count;                   //  entries of envp (NULL after)
    size_t own_first;                   //  envp [own_first..] are ours
    pid_t pid;                          //  `start` until reaped, else 0
    off_t log_start;                    //  launcher.log's size at start
};

static int64_t
s_mono_msec (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
lp_remote_find (const char *kind, const char *exe_dir, char *path, size_t size,
                char *err, size_t errlen)
{
    for (const char *c = kind; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_' && *c != '-') {
            snprintf (err, errlen, "unknown launcher '%s'", kind);
            return -1;
        }
    const char *env_dir = getenv ("LP_LAUNCHER_DIR");
    char dirs [3][1200];
    int count = 0;
    if (env_dir && *env_dir)
        snprintf (dirs [count++], sizeof dirs [0], "%s", env_dir);
    snprintf (dirs [count++], sizeof dirs [0], "%s/../libexec/luaparallel", exe_dir);
#if defined (LP_LAUNCHER_SOURCE_DIR) && defined (LP_CONTROLLER_BUILD_DIR)
    //  The source tree's scripts for the lpcontroller of a build folder
    //  only: an installed one takes its own prefix's
    if (streq (exe_dir, LP_CONTROLLER_BUILD_DIR))
        snprintf (dirs [count++], sizeof dirs [0], "%s", LP_LAUNCHER_SOURCE_DIR);
#endif
    for (int i = 0; i < count; i++) {
        snprintf (path, size, "%s/lp-launch-%s", dirs [i], kind);
        if (access (path, X_OK) == 0)
            return 0;
    }
    int used = snprintf (err, errlen, "unknown launcher '%s': no executable lp-launch-%s in",
                         kind, kind);
    for (int i = 0; i < count && used > 0 && (size_t) used < errlen; i++)
        used += snprintf (err + used, errlen - (size_t) used, "%s %s", i? ",": "", dirs [i]);
    return -1;
}

int
lp_remote_hosts_count (const char *hosts)
{
    int total = 0;
    const char *item = hosts;
    while (*item) {
        size_t len = strcspn (item, ",");
        const char *colon = NULL;
        for (const char *c = item; c < item + len; c++)
            if (*c == ':')
                colon = c;
        int count = 1;
        if (colon && colon + 1 < item + len
        &&  strspn (colon + 1, "0123456789") == (size_t) (item + len - colon - 1))
            count = atoi (colon + 1);
        if (len > 0)
            total += count;
        item += len;
        if (*item == ',')
            item++;
    }
    return total;
}

bool
lp_remote_option_valid (const char *option)
{
    const char *equals = strchr (option, '=');
    if (!equals || equals == option || strchr (option, '\n'))
        return false;
    for (const char *c = option; c < equals; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_')
            return false;
    return true;
}

//  Appends "NAME=value" to envp. 0 / -1 when out of memory.
static int
s_env_add (lp_remote_t *self, const char *name, const char *value)
{
    size_t len = strlen (name) + strlen (value) + 2;
    char *entry = (char *) malloc (len);
    if (!entry)
        return -1;
    snprintf (entry, len, "%s=%s", name, value);
    self->envp [self->env_count++] = entry;
    return 0;
}

static int
s_env_int (lp_remote_t *self, const char *name, long value)
{
    char text [32];
    snprintf (text, sizeof text, "%ld", value);
    return s_env_add (self, name, text);
}

//  The script's environment: ours without LP_*, then the launcher's.
static int
s_build_env (lp_remote_t *self, const lp_remote_config_t *config)
{
    size_t inherited = 0;
    for (char **e = environ; *e; e++)
        inherited++;
    self->envp = (char **) calloc (inherited + config->option_count + 16, sizeof (char *));
    if (!self->envp)
        return -1;
    for (char **e = environ; *e; e++) {
        if (strncmp (*e, "LP_", 3) == 0)
            continue;
        if (!(self->envp [self->env_count] = strdup (*e)))
            return -1;
        self->env_count++;
    }
    self->own_first = self->env_count;
    int rc = s_env_add (self, "LP_LAUNCHER_KIND", config->kind)
           | s_env_add (self, "LP_LAUNCHER_SCRIPT", config->script)
           | s_env_int (self, "LP_N", config->count)
           | s_env_int (self, "LP_FIRST_ID", config->first_id)
           | s_env_add (self, "LP_ENGINE", config->engine_path)
           | s_env_add (self, "LP_ENGINE_FILE", config->engine_file)
           | s_env_add (self, "LP_ENGINE_ARGS", config->engine_args)
           | s_env_add (self, "LP_PROFILE_DIR", config->profile_dir)
           | s_env_add (self, "LP_STATE_DIR", config->state_dir)
           | s_env_add (self, "LP_LOG_DIR", config->log_dir);
    //  LP_OPT_<KEY>: a later option of the same key wins (the command
    //  line's come after the config file's)
    for (size_t i = 0; i < config->option_count && rc == 0; i++) {
        const char *option = config->options [i];
        const char *equals = strchr (option, '=');
        if (!equals)
            continue;
        char name [128] = "LP_OPT_";
        size_t key_len = (size_t) (equals - option);
        if (key_len > sizeof name - 8)
            key_len = sizeof name - 8;
        for (size_t k = 0; k < key_len; k++)
            name [7 + k] = (char) toupper ((unsigned char) option [k]);
        name [7 + key_len] = 0;
        size_t name_len = strlen (name);
        for (size_t j = self->own_first; j < self->env_count; j++)
            if (strncmp (self->envp [j], name, name_len) == 0 && self->envp [j][name_len] == '=') {
                free (self->envp [j]);
                self->envp [j] = self->envp [--self->env_count];
                self->envp [self->env_count] = NULL;
                break;
            }
        rc = s_env_add (self, name, equals + 1);
    }
    return rc;
}

lp_remote_t *
lp_remote_new (const lp_remote_config_t *config)
{
    lp_remote_t *self = (lp_remote_t *) calloc (1, sizeof (lp_remote_t));
    if (!self)
        return NULL;
    size_t log_len = strlen (config->log_dir) + 16;
    self->kind = strdup (config->kind);
    self->script = strdup (config->script);
    self->state_dir = strdup (config->state_dir);
    self->log_path = (char *) malloc (log_len);
    if (!self->kind || !self->script || !self->state_dir || !self->log_path
    ||  s_build_env (self, config) != 0) {
        lp_remote_destroy (&self);
        return NULL;
    }
    snprintf (self->log_path, log_len, "%s/launcher.log", config->log_dir);
    return self;
}

void
lp_remote_destroy (lp_remote_t **self_p)
{
    lp_remote_t *self = *self_p;
    if (self) {
        for (size_t i = 0; self->envp && i < self->env_count; i++)
            free (self->envp [i]);
        free (self->envp);
        free (self->kind);
        free (self->script);
        free (self->state_dir);
        free (self->log_path);
        free (self);
        *self_p = NULL;
    }
}

//  launcher.env: the launcher's own variables, one NAME=value a line.
static int
s_write_env (lp_remote_t *self, char *err, size_t errlen)
{
    char path [1200], tmp [1300];
    snprintf (path, sizeof path, "%s/launcher.env", self->state_dir);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *file = fd >= 0? fdopen (fd, "w"): NULL;
    if (!file) {
        snprintf (err, errlen, "cannot write %.1100s: %s", tmp, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    for (size_t i = self->own_first; i < self->env_count; i++)
        fprintf (file, "%s\n", self->envp [i]);
    if (fclose (file) != 0 || rename (tmp, path) != 0) {
        snprintf (err, errlen, "cannot write %.1100s: %s", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

//  Forks `script verb` in a process group of its own, output appended to
//  launcher.log. Its pid, or -1 with err.
static pid_t
s_spawn (lp_remote_t *self, const char *verb, char *err, size_t errlen)
{
    int log_fd = open (self->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        snprintf (err, errlen, "launcher %s: cannot write %s: %s", self->kind, self->log_path,
                  strerror (errno));
        return -1;
    }
    char header [1400];
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    int len = snprintf (header, sizeof header, "---- %04d-%02d-%02d %02d:%02d:%02d UTC: %s %s\n",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, self->script, verb);
    if (write (log_fd, header, (size_t) len) != len)
        zsys_warning ("cannot write %s", self->log_path);
    if (streq (verb, "start")) {
        struct stat info;
        self->log_start = fstat (log_fd, &info) == 0? info.st_size: 0;
    }
    char *argv [] = { self->script, LP_UNCONST (char *, verb), NULL };
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (err, errlen, "launcher %s: fork: %s", self->kind, strerror (errno));
        close (log_fd);
        return -1;
    }
    if (pid == 0) {
        //  Child: only async-signal-safe calls until exec.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        setpgid (0, 0);
        int in = open ("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2 (in, 0);
        dup2 (log_fd, 1);
        dup2 (log_fd, 2);
        //  Nothing else of ours: a long-running launcher (ssh, mpiexec)
        //  must not hold the controller's sockets, or a pipe its caller
        //  reads to the end
        if (close_range (3, ~0U, 0) != 0)
            for (int fd = 3; fd < 1024; fd++)
                close (fd);
        execve (self->script, argv, self->envp);
        static const char text [] = "lpcontroller: cannot run the launcher script\n";
        if (write (2, text, sizeof text - 1) < 0)
            _exit (127);
        _exit (127);
    }
    close (log_fd);
    return pid;
}

int
lp_remote_start (lp_remote_t *self, char *err, size_t errlen)
{
    assert (self);
    if (mkdir (self->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf (err, errlen, "launcher %s: cannot create %s: %s", self->kind, self->state_dir,
                  strerror (errno));
        return -1;
    }
    if (chmod (self->state_dir, 0700) != 0) {
        snprintf (err, errlen, "launcher %s: %s: %s", self->kind, self->state_dir,
                  strerror (errno));
        return -1;
    }
    char why [1300];
    if (s_write_env (self, why, sizeof why) != 0) {
        snprintf (err, errlen, "launcher %s: %s", self->kind, why);
        return -1;
    }
    self->pid = s_spawn (self, "start", err, errlen);
    if (self->pid < 0) {
        self->pid = 0;
        return -1;
    }
    zsys_info ("launcher %s: %s start (pid %d), output in %s", self->kind, self->script,
               (int) self->pid, self->log_path);
    return 0;
}

bool
lp_remote_reap (lp_remote_t *self, int *status_p)
{
    assert (self);
    if (self->pid <= 0)
        return false;
    int status = 0;
    if (waitpid (self->pid, &status, WNOHANG) != self->pid)
        return false;
    self->pid = 0;
    if (status_p)
        *status_p = status;
    return true;
}

int
lp_remote_pid (lp_remote_t *self)
{
    assert (self);
    return (int) self->pid;
}

//  --------------------------------------------------------------------------
//  What a failed start is quoted by. Launchers print differently: ssh one
//  line, sbatch "error:" lines, mpiexec a paragraph whose cause comes
//  first and whose last lines are advice (--oversubscribe...). So rather
//  than the last lines, the quote is made of the lines that say what went
//  wrong (s_telling: error, failed, cannot, refused, not enough...), the
//  first LP_LAUNCHER_TAIL_LINES of them, each joined with the next line of
//  its paragraph when its sentence runs on there; then the last line, when
//  it stands alone (a script's own summary). Only when no line tells, the
//  last LP_LAUNCHER_TAIL_LINES lines. Blank lines, rules (-----) and the
//  log's "---- " markers separate paragraphs and are never quoted.

#define S_TAIL_BYTES    8192            //  of this run's output, at most
#define S_TAIL_LINES    512             //  lines kept of them (the last)

static const char *s_telling_words [] = {
    "error", "fail", "cannot", "can't", "could not", "unable", "not enough",
    "refused", "denied", "invalid", "no such", "not found", "fatal",
    "timed out", "unreachable", "no route", "exited", "killed", "aborted"
};

//  True when the line (len bytes) names a failure, in any case
static bool
s_telling (const char *line, size_t len)
{
    char lower [256];
    if (len >= sizeof lower)
        len = sizeof lower - 1;
    for (size_t i = 0; i < len; i++)
        lower [i] = (char) tolower ((unsigned char) line [i]);
    lower [len] = 0;
    for (size_t w = 0; w < sizeof s_telling_words / sizeof s_telling_words [0]; w++)
        if (strstr (lower, s_telling_words [w]))
            return true;
    return false;
}

//  True for a paragraph break: nothing but blanks and rule characters,
//  or the log's own "---- " marker
static bool
s_break_line (const char *line)
{
    if (strncmp (line, "---- ", 5) == 0)
        return true;
    for (; *line; line++)
        if (!strchr (" \t\r-=_*#~", *line))
            return false;
    return true;
}

typedef struct {
    const char *text;                   //  the line, NUL-terminated
    bool starts;                        //  first line of its paragraph
    bool quoted;                        //  already in the quote
} s_line_t;

//  Appends " | " (unless first) and text to out; false once it is full
static bool
s_quote_add (char *out, size_t size, size_t *used, const char *sep, const char *text)
{
    if (*used + 1 >= size)
        return false;
    int n = snprintf (out + *used, size - *used, "%s%s", *used? sep: "", text);
    if (n < 0 || (size_t) n >= size - *used) {
        *used = size - 1;
        return false;
    }
    *used += (size_t) n;
    return true;
}

//  The quote of output text (modified in place) into out (see above)
static void
s_quote (char *text, char *out, size_t size)
{
    *out = 0;
    if (size == 0)
        return;
    s_line_t lines [S_TAIL_LINES];
    int count = 0;
    bool starts = true;
    for (char *line = text; line; ) {
        char *end = strchr (line, '\n');
        if (end)
            *end = 0;
        size_t len = strlen (line);
        if (len && line [len - 1] == '\r')
            line [--len] = 0;
        if (s_break_line (line))
            starts = true;
        else {
            if (count == S_TAIL_LINES) {
                memmove (lines, lines + 1, sizeof lines [0] * (S_TAIL_LINES - 1));
                count--;
            }
            lines [count++] = (s_line_t) { line, starts, false };
            starts = false;
        }
        line = end? end + 1: NULL;
    }
    size_t used = 0;
    int told = 0;
    for (int i = 0; i < count && told < LP_LAUNCHER_TAIL_LINES; i++) {
        if (lines [i].quoted || !s_telling (lines [i].text, strlen (lines [i].text)))
            continue;
        told++;
        lines [i].quoted = true;
        if (!s_quote_add (out, size, &used, " | ", lines [i].text))
            return;
        //  A sentence that runs on to the next line of its paragraph
        size_t len = strlen (lines [i].text);
        char last = lines [i].text [len - 1];
        if (i + 1 < count && !lines [i + 1].starts && !strchr (".:!?;)", last)
        &&  !isspace ((unsigned char) lines [i + 1].text [0])
        &&  !s_telling (lines [i + 1].text, strlen (lines [i + 1].text))) {
            lines [i + 1].quoted = true;
            if (!s_quote_add (out, size, &used, " ", lines [i + 1].text))
                return;
        }
    }
    if (told) {
        if (!lines [count - 1].quoted && lines [count - 1].starts)
            s_quote_add (out, size, &used, " | ", lines [count - 1].text);
        return;
    }
    for (int i = count > LP_LAUNCHER_TAIL_LINES? count - LP_LAUNCHER_TAIL_LINES: 0; i < count; i++)
        if (!s_quote_add (out, size, &used, " | ", lines [i].text))
            return;
}

void
lp_remote_tail (lp_remote_t *self, char *out, size_t size)
{
    assert (self);
    *out = 0;
    FILE *file = fopen (self->log_path, "r");
    if (!file)
        return;
    //  The last S_TAIL_BYTES of this run's output at most
    off_t from = self->log_start;
    if (fseeko (file, 0, SEEK_END) == 0 && ftello (file) - from > S_TAIL_BYTES)
        from = ftello (file) - S_TAIL_BYTES;
    char text [S_TAIL_BYTES + 1];
    size_t got = 0;
    if (fseeko (file, from, SEEK_SET) == 0)
        got = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [got] = 0;
    s_quote (text, out, size);
}

//  Waits (SIGCHLD blocked) until pid is reaped or deadline; true if reaped.
static bool
s_wait_pid (pid_t pid, int *status, int64_t deadline)
{
    sigset_t chld;
    sigemptyset (&chld);
    sigaddset (&chld, SIGCHLD);
    while (true) {
        pid_t got = waitpid (pid, status, WNOHANG);
        if (got == pid || (got < 0 && errno == ECHILD))
            return true;
        int64_t left = deadline - s_mono_msec ();
        if (left <= 0)
            return false;
        //  At most 100 ms per wait: SIGCHLD of another child is
        //  consumed here too, and may come first
        if (left > 100)
            left = 100;
        struct timespec timeout = { 0, (long) left * 1000000 };
        sigtimedwait (&chld, NULL, &timeout);
    }
}

int
lp_remote_stop (lp_remote_t *self, int grace_msec, char *err, size_t errlen)
{
    assert (self);
    int rc = -1;
    pid_t stopper = s_spawn (self, "stop", err, errlen);
    if (stopper > 0) {
        int status = 0;
        if (!s_wait_pid (stopper, &status, s_mono_msec () + LP_LAUNCHER_STOP_MSEC)) {
            kill (-stopper, SIGKILL);
            s_wait_pid (stopper, &status, s_mono_msec () + grace_msec);
            snprintf (err, errlen, "launcher %s: stop did not end within %d s", self->kind,
                      LP_LAUNCHER_STOP_MSEC / 1000);
        }
        else
        if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
            rc = 0;
        else {
            char tail [600];
            lp_remote_tail (self, tail, sizeof tail);
            snprintf (err, errlen, "launcher %s: stop failed (%s %d): %s", self->kind,
                      WIFEXITED (status)? "exit status": "signal",
                      WIFEXITED (status)? WEXITSTATUS (status): WTERMSIG (status), tail);
        }
    }
    //  What is left of start: its whole process group
    if (self->pid > 0) {
        kill (-self->pid, SIGTERM);
        int status;
        if (!s_wait_pid (self->pid, &status, s_mono_msec () + grace_msec)) {
            kill (-self->pid, SIGKILL);
            s_wait_pid (self->pid, &status, s_mono_msec () + grace_msec);
        }
        else
            kill (-self->pid, SIGKILL);
        self->pid = 0;
    }
    if (rc == 0) {
        char path [1200];
        snprintf (path, sizeof path, "%s/launcher.env", self->state_dir);
        unlink (path);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test: hosts counts, options, and a script's start, failure, tail
//  and stop, with a launcher kind of the test's own (LP_LAUNCHER_DIR).

void
lp_remote_test (bool verbose)
{
    (void) verbose;
    printf (" * remote: ");
    //  @selftest
    assert (lp_remote_hosts_count ("h1:4,alice@h2%2222:8") == 12);
    assert (lp_remote_hosts_count ("h1,h2,h3") == 3);
    assert (lp_remote_hosts_count ("[fe80::1%eth0]:2,,h%22") == 3);
    assert (lp_remote_option_valid ("mpi_args=--oversubscribe -x A=1"));
    assert (lp_remote_option_valid ("hosts="));
    assert (!lp_remote_option_valid ("=x"));
    assert (!lp_remote_option_valid ("a b=x"));
    assert (!lp_remote_option_valid ("novalue"));
    assert (!lp_remote_option_valid ("a=two\nlines"));

    //  The quote of a failed start: outputs captured from the real tools
    //  (Open MPI 4.1.4's mpiexec -n 64 on 2 cores, OpenSSH's ssh -p 1 to
    //  127.0.0.1, Slurm 22.05's sbatch -p nosuch)
    char quote [600];
    char mpi [] =
        "---- lp-launch-mpi start\n"
        "lp-launch-mpi: mpiexec -n 64 --mca orte_abort_on_non_zero_status 0 lpengine\n"
        "--------------------------------------------------------------------------\n"
        "There are not enough slots available in the system to satisfy the 64\n"
        "slots that were requested by the application:\n\n  lpengine\n\n"
        "Either request fewer slots for your application, or make more slots\n"
        "available for use.\n\n"
        "A \"slot\" is the Open MPI term for an allocatable unit where we can\n"
        "launch a process.  The number of slots available are defined by the\n"
        "environment in which Open MPI processes are run:\n\n"
        "  1. Hostfile, via \"slots=N\" clauses (N defaults to number of\n"
        "     processor cores if not provided)\n"
        "  2. The --host command line parameter, via a \":N\" suffix on the\n"
        "     hostname (N defaults to 1 if not provided)\n"
        "  3. Resource manager (e.g., SLURM, PBS/Torque, LSF, etc.)\n"
        "  4. If none of a hostfile, the --host command line parameter, or an\n"
        "     RM is present, Open MPI defaults to the number of processor cores\n\n"
        "In all the above cases, if you want Open MPI to default to the number\n"
        "of hardware threads instead of the number of processor cores, use the\n"
        "--use-hwthread-cpus option.\n\n"
        "Alternatively, you can use the --oversubscribe option to ignore the\n"
        "number of available slots when deciding the number of processes to\n"
        "launch.\n"
        "--------------------------------------------------------------------------\n";
    s_quote (mpi, quote, sizeof quote);
    assert (streq (quote, "There are not enough slots available in the system to satisfy the 64 "
                          "slots that were requested by the application:"));
    //  A last line that stands alone follows (a script's own summary)
    char summary [] = "engine 3: bind failed.\nsee the log\n\nlp-launch-x: 0 of 4 registered\n";
    s_quote (summary, quote, sizeof quote);
    assert (streq (quote, "engine 3: bind failed. | lp-launch-x: 0 of 4 registered"));
    char ssh [] = "starting 2 engines on 127.0.0.1\n"
                  "ssh: connect to host 127.0.0.1 port 1: Connection refused\n";
    s_quote (ssh, quote, sizeof quote);
    assert (streq (quote, "ssh: connect to host 127.0.0.1 port 1: Connection refused"));
    char sbatch [] = "sbatch: error: invalid partition specified: nosuch\r\n"
                     "sbatch: error: Batch job submission failed: Invalid partition name specified\n";
    s_quote (sbatch, quote, sizeof quote);
    assert (streq (quote, "sbatch: error: invalid partition specified: nosuch | "
                          "sbatch: error: Batch job submission failed: Invalid partition name specified"));
    //  Nothing telling: the last lines; a small buffer: cut, terminated
    char plain [] = "one\ntwo\n\nthree\nfour\nfive\nsix\nseven\n";
    s_quote (plain, quote, sizeof quote);
    assert (streq (quote, "two | three | four | five | six | seven"));
    char cut [] = "error: a long line of text\n";
    s_quote (cut, quote, 8);
    assert (streq (quote, "error: "));
    char empty [] = "\n\n-----\n";
    s_quote (empty, quote, sizeof quote);
    assert (streq (quote, ""));

    char folder [] = "/tmp/lp_remote_test.XXXXXX";
    assert (mkdtemp (folder));
    char script [1200], path [1300], err [1500], state [1200];
    snprintf (script, sizeof script, "%s/lp-launch-fake", folder);
    FILE *file = fopen (script, "w");
    assert (file);
    //  start: records its environment; fails when LP_OPT_FAIL is set
    fprintf (file, "#!/bin/sh\n"
             "if [ \"$1\" = start ]; then env | grep '^LP_' > \"$LP_STATE_DIR/env\";\n"
             "  [ -n \"$LP_OPT_FAIL\" ] && { echo \"first\"; echo \"cannot reach $LP_OPT_FAIL\" >&2;"
             " exit 3; }\n"
             "fi\n"
             "[ \"$1\" = stop ] && echo stopped > \"$LP_STATE_DIR/stopped\"\n"
             "exit 0\n");
    fclose (file);
    assert (chmod (script, 0700) == 0);
    setenv ("LP_LAUNCHER_DIR", folder, 1);
    assert (lp_remote_find ("fake", "/nonexistent", path, sizeof path, err, sizeof err) == 0);
    assert (streq (path, script));
    assert (lp_remote_find ("nosuch", "/nonexistent", path, sizeof path, err, sizeof err) == -1);
    assert (strstr (err, "unknown launcher 'nosuch'") && strstr (err, folder));
    assert (lp_remote_find ("../x", "/nonexistent", path, sizeof path, err, sizeof err) == -1);
    unsetenv ("LP_LAUNCHER_DIR");

    snprintf (state, sizeof state, "%s/launcher", folder);
    const char *options [] = { "hosts=a:1", "fail=nowhere.example", "hosts=b:2" };
    lp_remote_config_t config = { "fake", script, 3, 0, "/bin/lpengine", "/x/lp-engine.json",
                                  "--lost-exit 60000", folder, state, folder, options, 3 };
    lp_remote_t *remote = lp_remote_new (&config);
    assert (remote);
    sigset_t chld, old;
    sigemptyset (&chld);
    sigaddset (&chld, SIGCHLD);
    sigprocmask (SIG_BLOCK, &chld, &old);
    assert (lp_remote_start (remote, err, sizeof err) == 0);
    assert (lp_remote_pid (remote) > 0);
    int status = -1;
    int64_t deadline = s_mono_msec () + 10000;
    while (!lp_remote_reap (remote, &status) && s_mono_msec () < deadline) {
        struct timespec timeout = { 0, 50 * 1000000 };
        sigtimedwait (&chld, NULL, &timeout);
    }
    assert (WIFEXITED (status) && WEXITSTATUS (status) == 3);
    assert (lp_remote_pid (remote) == 0);
    char tail [600];
    lp_remote_tail (remote, tail, sizeof tail);
    assert (streq (tail, "cannot reach nowhere.example"));
    //  The environment: the later option of a key wins, keys upper-cased
    snprintf (path, sizeof path, "%s/env", state);
    file = fopen (path, "r");
    assert (file);
    char env [4096];
    size_t got = fread (env, 1, sizeof env - 1, file);
    env [got] = 0;
    fclose (file);
    assert (strstr (env, "LP_OPT_HOSTS=b:2\n") && !strstr (env, "LP_OPT_HOSTS=a:1"));
    assert (strstr (env, "LP_N=3\n") && strstr (env, "LP_FIRST_ID=0\n"));
    assert (strstr (env, "LP_ENGINE_ARGS=--lost-exit 60000\n"));
    assert (strstr (env, "LP_STATE_DIR="));
    struct stat info;
    assert (stat (state, &info) == 0 && (info.st_mode & 0777) == 0700);
    snprintf (path, sizeof path, "%s/launcher.env", state);
    assert (stat (path, &info) == 0 && (info.st_mode & 0777) == 0600);
    //  stop runs the script's stop, and removes launcher.env
    assert (lp_remote_stop (remote, 2000, err, sizeof err) == 0);
    assert (access (path, F_OK) != 0);
    snprintf (path, sizeof path, "%s/stopped", state);
    assert (access (path, F_OK) == 0);
    lp_remote_destroy (&remote);
    assert (remote == NULL);
    sigprocmask (SIG_SETMASK, &old, NULL);
    //  @end
    char command [1300];
    snprintf (command, sizeof command, "rm -rf '%s'", folder);
    assert (system (command) == 0);
    printf ("OK\n");
}
