/*  lp_launcher.h - local engines as child processes of the controller.
    The controller keeps them as its own children and reaps them itself,
    so an engine's death is seen at once and stop is prompt. */
#ifndef LP_LAUNCHER_H_INCLUDED
#define LP_LAUNCHER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _lp_launcher_t lp_launcher_t;
typedef void (lp_launcher_exit_fn) (int pid, int index, const char *reason, void *arg);

//  engine_path: the lpengine binary; engine_file: lp-engine.json;
//  log_dir: engine-<k>.log go there.
lp_launcher_t *lp_launcher_new (const char *engine_path, const char *engine_file,
                                const char *log_dir);
void  lp_launcher_destroy (lp_launcher_t **self_p);
//  Starts n more engines. 0, or -1 when a fork failed (err says why).
int   lp_launcher_start (lp_launcher_t *self, int n, char *err, size_t errlen);
//  Reaps every exited child (non-blocking), calling fn for each.
int   lp_launcher_reap (lp_launcher_t *self, lp_launcher_exit_fn *fn, void *arg);
size_t lp_launcher_running (lp_launcher_t *self);
//  SIGTERM to all, waits up to grace_msec, then SIGKILL; reaps all.
//  SIGCHLD must be blocked in the calling thread.
void  lp_launcher_stop (lp_launcher_t *self, int grace_msec);

#endif
