/*  lp_launcher.h - local engines as child processes of the controller.
    The controller keeps them as its own children and reaps them itself,
    so an engine's death is seen at once and stop is prompt. Each engine
    has a slot k: log/engine-<k>.log, pid/engine-<k>.pid (so that
    `cluster.sh stop` finds engines a killed controller left behind), and
    a restart puts a new process in the same slot. An engine's stdout and
    stderr are a pipe that the log thread (lp_log.h) copies into its
    rotated log file. */
#ifndef LP_LAUNCHER_H_INCLUDED
#define LP_LAUNCHER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "lp_log.h"

typedef struct _lp_launcher_t lp_launcher_t;

typedef struct {
    const char *engine_path;            //  the lpengine binary
    const char *engine_file;            //  lp-engine.json
    const char *log_dir;                //  engine-<k>.log go there
    const char *pid_dir;                //  engine-<k>.pid go there
    long memory_mb;                     //  --memory-limit MB; < 0: not passed
    long lost_exit_msec;                //  --lost-exit MSEC; 0: not passed
    lp_log_t *log;                      //  engine output goes through it
                                        //  (rotated); NULL: straight to the file
} lp_launcher_config_t;

//  How a child ended, for lp_launcher_exit_fn. status is waitpid's.
typedef void (lp_launcher_exit_fn) (int pid, int slot, int status, const char *reason,
                                    void *arg);

//  The strings in config are copied.
lp_launcher_t *lp_launcher_new (const lp_launcher_config_t *config);
void  lp_launcher_destroy (lp_launcher_t **self_p);
//  Starts n more engines in new slots; slot k asks for engine id k (so
//  engine-<k>.log is usually engine k's). 0, or -1 when a fork failed.
int   lp_launcher_start (lp_launcher_t *self, int n, char *err, size_t errlen);
//  lpcontroller --restore: n slots, each adopting the live lpengine that
//  its pid file names (left by a controller that died: not our child,
//  watched and stopped by pid), or starting a new engine asking for id k.
//  *adopted_p gets how many were adopted. 0, or -1 with err.
int   lp_launcher_adopt (lp_launcher_t *self, int n, int *adopted_p, char *err, size_t errlen);
//  Starts a new engine in the slot of an exited one, asking for engine id
//  `id` (its old id; -1: the slot's number). 0, or -1 with err.
int   lp_launcher_restart (lp_launcher_t *self, int slot, int id, char *err, size_t errlen);
//  Reaps every exited child (non-blocking), removing its pid file and
//  calling fn for each. Returns how many.
int   lp_launcher_reap (lp_launcher_t *self, lp_launcher_exit_fn *fn, void *arg);
size_t lp_launcher_running (lp_launcher_t *self);
//  The slot of pid when it is a running child of ours (not adopted), else -1.
int   lp_launcher_slot (lp_launcher_t *self, int pid);
//  SIGTERM to all, waits up to grace_msec, then SIGKILL; reaps all and
//  removes their pid files. SIGCHLD must be blocked in the calling thread.
void  lp_launcher_stop (lp_launcher_t *self, int grace_msec);
//  True while pid runs; a zombie counts as gone (a dead controller's
//  orphan waits for init to reap it, which takes a while here).
bool  lp_launcher_pid_alive (int pid);
//  The pid a pid file holds; 0 when it is missing or holds none.
int   lp_launcher_pid_read (const char *pid_path);
//  The default --memory-limit for n local engines: LP_ENGINE_MEMORY_SHARE
//  percent of physical memory divided by n, in MB (at least 1).
long  lp_launcher_default_memory_mb (int n);

#endif
