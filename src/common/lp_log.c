/*  =========================================================================
    lp_log.c - the controller's log files, rotated by size (lp_log.h)

    One plain thread (pthread, not a czmq actor: it owns no socket) polls
    a wake-up pipe and the read ends of the local engines' output pipes.
    The arrays of files and pipes are guarded by one mutex, which the
    thread holds while it handles a round of events; the controller's
    threads take it only to add a pipe. Commands travel as single bytes on
    the wake-up pipe: 'w' (a pipe was added: rebuild the poll set), 'R'
    (reopen every file), 'Q' (drain and stop).

    Rotation renames FILE.<k-1> to FILE.<k> down to FILE -> FILE.1, then
    opens a new FILE. A followed file rotates before a write would take it
    past the cap (writes are at most LP_LOG_CHUNK_BYTES, the cap at least
    a megabyte), so it never exceeds it. The process's own file is written
    by every thread directly (fd 1 and 2); its size is checked every
    LP_LOG_CHECK_MSEC and it rotates once past the cap.
    =========================================================================
*/
#include "lp_log.h"
#include "lp_defaults.h"
#include <czmq.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path;                         //  the file's name
    int fd;                             //  open for appending, -1 when not
    uint64_t size;                      //  bytes in it now
    bool own;                           //  the process's stdout/stderr
    bool failed;                        //  a write failed; said once
} s_file_t;

typedef struct {
    int fd;                             //  pipe read end, -1 at EOF
    size_t file;                        //  index into files
} s_pipe_t;

struct _lp_log_t {
    uint64_t max_bytes;                 //  rotate past this, 0 never
    int keep;                           //  rotated files kept
    pthread_t thread;                   //  the log's thread
    bool started;                       //  thread is running
    int wake [2];                       //  command pipe: [0] thread, [1] others
    pthread_mutex_t lock;               //  guards files, pipes, dropped
    s_file_t *files;                    //  every log file
    size_t nfiles;                      //  files used
    s_pipe_t *pipes;                    //  every followed pipe
    size_t npipes;                      //  pipes used
    uint64_t dropped;                   //  bytes not written (write errors)
    char chunk [LP_LOG_CHUNK_BYTES];    //  the thread's read buffer
};

//  --------------------------------------------------------------------------
//  Files

static int
s_open (const char *path)
{
    return open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

//  Opens (or reopens) a file by name; for the own file, makes it fd 1, 2.
static int
s_file_open (s_file_t *file)
{
    int fd = s_open (file->path);
    if (fd < 0)
        return -1;
    struct stat info;
    file->size = fstat (fd, &info) == 0? (uint64_t) info.st_size: 0;
    if (file->own) {
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        close (fd);
        fd = STDERR_FILENO;
    }
    else
    if (file->fd >= 0)
        close (file->fd);
    file->fd = fd;
    file->failed = false;
    return 0;
}

static void
s_file_rotate (lp_log_t *self, s_file_t *file)
{
    size_t len = strlen (file->path) + 16;
    char *from = (char *) malloc (len), *to = (char *) malloc (len);
    if (from && to) {
        for (int k = self->keep; k >= 1; k--) {
            if (k == 1)
                snprintf (from, len, "%s", file->path);
            else
                snprintf (from, len, "%s.%d", file->path, k - 1);
            snprintf (to, len, "%s.%d", file->path, k);
            rename (from, to);          //  a missing one is fine
        }
        if (self->keep == 0)
            unlink (file->path);
    }
    free (from);
    free (to);
    if (s_file_open (file) != 0 && !file->own) {
        close (file->fd);
        file->fd = -1;
    }
}

//  Appends len bytes to file, rotating first when they would pass the cap
static void
s_file_write (lp_log_t *self, s_file_t *file, const char *data, size_t len)
{
    if (self->max_bytes && file->size > 0 && file->size + len > self->max_bytes)
        s_file_rotate (self, file);
    if (file->fd < 0 && s_file_open (file) != 0) {
        self->dropped += len;
        return;
    }
    while (len > 0) {
        ssize_t put = write (file->fd, data, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            if (!file->failed)
                zsys_error ("cannot write %s: %s (output dropped until it can)",
                            file->path, strerror (errno));
            file->failed = true;
            self->dropped += len;
            return;
        }
        data += put;
        len -= (size_t) put;
        file->size += (uint64_t) put;
    }
}

//  The own file is written by anyone: its size comes from the file
static void
s_check_own (lp_log_t *self)
{
    for (size_t i = 0; i < self->nfiles; i++) {
        s_file_t *file = &self->files [i];
        struct stat info;
        if (file->own && self->max_bytes && fstat (STDERR_FILENO, &info) == 0
        &&  (uint64_t) info.st_size > self->max_bytes)
            s_file_rotate (self, file);
    }
}

//  Index of the file named path, added when new; (size_t) -1 out of memory
static size_t
s_file_find (lp_log_t *self, const char *path, bool own)
{
    for (size_t i = 0; i < self->nfiles; i++)
        if (strcmp (self->files [i].path, path) == 0)
            return i;
    s_file_t *grown = (s_file_t *) realloc (self->files, (self->nfiles + 1) * sizeof *grown);
    if (!grown)
        return (size_t) -1;
    self->files = grown;
    s_file_t *file = &self->files [self->nfiles];
    *file = (s_file_t) { strdup (path), -1, 0, own, false };
    if (!file->path)
        return (size_t) -1;
    return self->nfiles++;
}

//  --------------------------------------------------------------------------
//  The thread

//  Reads what one pipe holds now (at most a few chunks); false at EOF
static bool
s_pipe_read (lp_log_t *self, s_pipe_t *pipe, bool drain)
{
    for (int round = 0; round < 16 || drain; round++) {
        ssize_t got = read (pipe->fd, self->chunk, sizeof self->chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            return true;
        if (got <= 0)
            return false;
        s_file_write (self, &self->files [pipe->file], self->chunk, (size_t) got);
    }
    return true;
}

static void
s_pipes_compact (lp_log_t *self)
{
    size_t used = 0;
    for (size_t i = 0; i < self->npipes; i++)
        if (self->pipes [i].fd >= 0)
            self->pipes [used++] = self->pipes [i];
    self->npipes = used;
}

static void *
s_thread (void *arg)
{
    lp_log_t *self = (lp_log_t *) arg;
    struct pollfd *items = NULL;
    size_t capacity = 0;
    bool quit = false;
    while (!quit) {
        pthread_mutex_lock (&self->lock);
        size_t n = self->npipes;
        if (n + 1 > capacity) {
            struct pollfd *grown = (struct pollfd *) realloc (items, (n + 8) * sizeof *grown);
            if (grown) {
                items = grown;
                capacity = n + 8;
            }
            else
                n = capacity? capacity - 1: 0;
        }
        if (items) {
            items [0] = (struct pollfd) { self->wake [0], POLLIN, 0 };
            for (size_t i = 0; i < n; i++)
                items [i + 1] = (struct pollfd) { self->pipes [i].fd, POLLIN, 0 };
        }
        pthread_mutex_unlock (&self->lock);
        if (!items)
            break;
        int ready = poll (items, n + 1, LP_LOG_CHECK_MSEC);
        pthread_mutex_lock (&self->lock);
        if (ready > 0 && (items [0].revents & POLLIN)) {
            char commands [64];
            ssize_t got = read (self->wake [0], commands, sizeof commands);
            for (ssize_t c = 0; c < got; c++) {
                if (commands [c] == 'R') {
                    for (size_t i = 0; i < self->nfiles; i++)
                        if (s_file_open (&self->files [i]) != 0)
                            zsys_error ("cannot reopen %s: %s", self->files [i].path,
                                        strerror (errno));
                    zsys_info ("log files reopened (%zu)", self->nfiles);
                }
                if (commands [c] == 'Q')
                    quit = true;
            }
        }
        //  Pipes: items [i + 1] is pipes [i] (only appended to since)
        for (size_t i = 0; ready > 0 && i < n; i++) {
            if (items [i + 1].revents == 0)
                continue;
            s_pipe_t *pipe = &self->pipes [i];
            if (!s_pipe_read (self, pipe, false)) {
                close (pipe->fd);
                pipe->fd = -1;
            }
        }
        s_pipes_compact (self);
        s_check_own (self);
        if (quit) {
            //  Whatever the (stopped) engines left in their pipes
            for (size_t i = 0; i < self->npipes; i++) {
                s_pipe_read (self, &self->pipes [i], true);
                close (self->pipes [i].fd);
            }
            self->npipes = 0;
        }
        pthread_mutex_unlock (&self->lock);
    }
    free (items);
    return NULL;
}

//  --------------------------------------------------------------------------
//  API

lp_log_t *
lp_log_new (uint64_t max_bytes, int keep)
{
    lp_log_t *self = (lp_log_t *) calloc (1, sizeof (lp_log_t));
    if (!self)
        return NULL;
    self->max_bytes = max_bytes;
    self->keep = keep > 0? keep: 0;
    pthread_mutex_init (&self->lock, NULL);
    if (pipe2 (self->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free (self);
        return NULL;
    }
    //  A small stack: the thread only reads into self->chunk
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, 256 * 1024);
    self->started = pthread_create (&self->thread, &attr, s_thread, self) == 0;
    pthread_attr_destroy (&attr);
    if (!self->started)
        lp_log_destroy (&self);
    return self;
}

void
lp_log_destroy (lp_log_t **self_p)
{
    lp_log_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        char quit = 'Q';
        while (write (self->wake [1], &quit, 1) < 0 && errno == EINTR)
            ;
        pthread_join (self->thread, NULL);
    }
    close (self->wake [0]);
    close (self->wake [1]);
    for (size_t i = 0; i < self->npipes; i++)
        close (self->pipes [i].fd);
    for (size_t i = 0; i < self->nfiles; i++) {
        if (!self->files [i].own && self->files [i].fd >= 0)
            close (self->files [i].fd);
        free (self->files [i].path);
    }
    free (self->files);
    free (self->pipes);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
lp_log_own (lp_log_t *self, const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock (&self->lock);
    size_t index = s_file_find (self, path, true);
    int rc = 0;
    if (index == (size_t) -1) {
        snprintf (err, errlen, "%s: out of memory", path);
        rc = -1;
    }
    else
    if (s_file_open (&self->files [index]) != 0) {
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        rc = -1;
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
lp_log_follow (lp_log_t *self, int fd, const char *path, char *err, size_t errlen)
{
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    fcntl (fd, F_SETFD, FD_CLOEXEC);
    pthread_mutex_lock (&self->lock);
    size_t index = s_file_find (self, path, false);
    s_pipe_t *grown = index == (size_t) -1? NULL
                    : (s_pipe_t *) realloc (self->pipes, (self->npipes + 1) * sizeof *grown);
    if (grown) {
        self->pipes = grown;
        self->pipes [self->npipes++] = (s_pipe_t) { fd, index };
    }
    pthread_mutex_unlock (&self->lock);
    if (!grown) {
        snprintf (err, errlen, "%s: out of memory", path);
        close (fd);
        return -1;
    }
    char wake = 'w';
    if (write (self->wake [1], &wake, 1) < 0 && errno != EAGAIN)
        fprintf (stderr, "lpcontroller: log thread wake-up: %s\n", strerror (errno));
    return 0;
}

void
lp_log_reopen (lp_log_t *self)
{
    char reopen = 'R';
    if (write (self->wake [1], &reopen, 1) < 0 && errno != EAGAIN)
        fprintf (stderr, "lpcontroller: log thread wake-up: %s\n", strerror (errno));
}

uint64_t
lp_log_dropped (lp_log_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t dropped = self->dropped;
    pthread_mutex_unlock (&self->lock);
    return dropped;
}

void
lp_log_settings (lp_log_t *self, uint64_t *max_bytes, int *keep)
{
    *max_bytes = self->max_bytes;
    *keep = self->keep;
}

//  --------------------------------------------------------------------------
//  An engine's log after its controller is gone

typedef struct {
    char *path;                         //  the engine's log file
    uint64_t max_bytes;                 //  its rotation
    int keep;
} s_adopt_t;

static lp_log_t *s_adopted = NULL;      //  set once, by the watcher
static pthread_mutex_t s_adopted_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
s_watch (void *arg)
{
    s_adopt_t *adopt = (s_adopt_t *) arg;
    //  A pipe's write end reports POLLERR once no reader is left
    struct pollfd item = { STDOUT_FILENO, 0, 0 };
    while (poll (&item, 1, -1) < 0 || !(item.revents & (POLLERR | POLLNVAL)))
        ;
    lp_log_t *log = lp_log_new (adopt->max_bytes, adopt->keep);
    int fds [2];
    char err [1200];
    if (log && pipe2 (fds, O_CLOEXEC) == 0) {
        dup2 (fds [1], STDOUT_FILENO);
        dup2 (fds [1], STDERR_FILENO);
        close (fds [1]);
        if (lp_log_follow (log, fds [0], adopt->path, err, sizeof err) == 0) {
            pthread_mutex_lock (&s_adopted_lock);
            s_adopted = log;
            pthread_mutex_unlock (&s_adopted_lock);
            log = NULL;
            zsys_warning ("the controller's end of the output pipe is gone: "
                          "writing %s directly", adopt->path);
        }
    }
    lp_log_destroy (&log);
    free (adopt->path);
    free (adopt);
    return NULL;
}

int
lp_log_adopt_on_loss (const char *path, uint64_t max_bytes, int keep)
{
    struct stat info;
    if (fstat (STDOUT_FILENO, &info) != 0 || !S_ISFIFO (info.st_mode))
        return -1;
    s_adopt_t *adopt = (s_adopt_t *) calloc (1, sizeof (s_adopt_t));
    if (!adopt || !(adopt->path = strdup (path))) {
        free (adopt);
        return -1;
    }
    adopt->max_bytes = max_bytes;
    adopt->keep = keep;
    pthread_attr_t attr;
    pthread_attr_init (&attr);
    pthread_attr_setstacksize (&attr, 64 * 1024);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create (&thread, &attr, s_watch, adopt);
    pthread_attr_destroy (&attr);
    if (rc != 0) {
        free (adopt->path);
        free (adopt);
        return -1;
    }
    return 0;
}

void
lp_log_adopted_flush (void)
{
    pthread_mutex_lock (&s_adopted_lock);
    lp_log_t *log = s_adopted;
    s_adopted = NULL;
    pthread_mutex_unlock (&s_adopted_lock);
    if (log) {
        fflush (stdout);
        fflush (stderr);
        lp_log_destroy (&log);
    }
}

int
lp_log_check_writable (const char *path, char *err, size_t errlen)
{
    int fd = s_open (path);
    if (fd < 0) {
        snprintf (err, errlen, "cannot write %s: %s", path, strerror (errno));
        return -1;
    }
    close (fd);
    return 0;
}
