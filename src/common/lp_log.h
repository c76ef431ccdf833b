/*  lp_log.h - log files rotated by size: the controller's, and an
    orphaned engine's.

    One thread of its own (not an actor of the data path) keeps every log
    file of a profile's log/ folder:
    - the controller's own log (--daemon): stdout and stderr of the
      process are that file (dup2), so even an abort's last words land in
      it; the thread checks its size every LP_LOG_CHECK_MSEC and rotates
      it past the cap;
    - each local engine's log: the engine's stdout and stderr are a pipe
      whose read end the thread follows, writing what comes into
      engine-<k>.log; it rotates before a write would pass the cap, so no
      file ever exceeds it, and a chatty engine waits on its full pipe
      instead of filling the disk.
    Rotation: FILE -> FILE.1 -> ... -> FILE.<keep> (the oldest dropped),
    then a new FILE (mode 0600). A log folder holds at most (keep + 1) x
    max bytes per log. lp_log_reopen (on SIGHUP) reopens every file by its
    name, so an outside logrotate that renamed them gets new ones.

    An engine whose output pipe loses its reader (the controller was
    killed; the engine lives on, and may register with the next one) takes
    over its own log: lp_log_adopt_on_loss watches the pipe and then puts
    a pipe of its own, read by an lp_log thread in the engine, behind
    stdout and stderr, writing the same file with the same rotation. */
#ifndef LP_LOG_H_INCLUDED
#define LP_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _lp_log_t lp_log_t;

//  max_bytes 0: never rotate. keep: rotated files kept (0: the full file
//  is dropped). Starts the thread; NULL when it cannot.
lp_log_t *lp_log_new (uint64_t max_bytes, int keep);
//  Drains what the followed pipes still hold, stops the thread, closes.
void  lp_log_destroy (lp_log_t **self_p);
//  Makes path the process's stdout and stderr (appending). 0, or -1 with
//  err = "<path>: <reason>".
int   lp_log_own (lp_log_t *self, const char *path, char *err, size_t errlen);
//  Appends everything read from fd (a pipe's read end, now owned by the
//  log) to path, until end of file. Several pipes may feed one path.
//  0, or -1 with err (fd is closed then).
int   lp_log_follow (lp_log_t *self, int fd, const char *path, char *err, size_t errlen);
//  Reopens every file by its name (SIGHUP), in the log's thread.
void  lp_log_reopen (lp_log_t *self);
//  Bytes of output dropped because a log could not be written.
uint64_t lp_log_dropped (lp_log_t *self);
//  The rotation settings (for the engines the controller starts).
void  lp_log_settings (lp_log_t *self, uint64_t *max_bytes, int *keep);
//  Engine: when stdout is a pipe, a small thread waits for it to lose its
//  reader, then writes stdout and stderr into path itself (rotated as
//  lp_log_new). 0 when watching, -1 when stdout is no pipe or no thread.
int   lp_log_adopt_on_loss (const char *path, uint64_t max_bytes, int keep);
//  Engine, at exit: copies what the adopted log's pipe still holds.
void  lp_log_adopted_flush (void);
//  Can path be opened for appending (created if missing)? 0, or -1 with
//  err = "cannot write <path>: <reason>".
int   lp_log_check_writable (const char *path, char *err, size_t errlen);

#endif
