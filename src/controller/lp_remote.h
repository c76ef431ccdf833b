/*  lp_remote.h - engines started by a launcher script (--engines KIND).

    A kind other than local is a bash script lp-launch-KIND (src/launchers/,
    installed to <prefix>/libexec/luaparallel/). The controller runs
    `lp-launch-KIND start` as its child, in a process group of its own,
    with the launcher environment (docs/operations.md, "Launchers"):
    LP_N, LP_ENGINE, LP_ENGINE_FILE, LP_ENGINE_ARGS, LP_PROFILE_DIR,
    LP_STATE_DIR, LP_FIRST_ID, LP_LOG_DIR and LP_OPT_<KEY> for each
    launcher option. Its stdout and stderr are appended to
    log/launcher.log. `start` may keep running while its engines run (ssh,
    mpiexec) or return once they are submitted (sbatch). On stop the
    controller runs `lp-launch-KIND stop` with the same environment, then
    ends what is left of start's process group.

    The environment is also written to <state dir>/launcher.env (mode
    0600) before start runs, so that `cluster.sh stop` can run `stop`
    itself when the controller was killed; a `stop` that succeeds removes
    it. */
#ifndef LP_REMOTE_H_INCLUDED
#define LP_REMOTE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _lp_remote_t lp_remote_t;

typedef struct {
    const char *kind;                   //  "ssh", "mpi", ...
    const char *script;                 //  path of lp-launch-KIND
    int count;                          //  LP_N
    int first_id;                       //  LP_FIRST_ID
    const char *engine_path;            //  LP_ENGINE
    const char *engine_file;            //  LP_ENGINE_FILE
    const char *engine_args;            //  LP_ENGINE_ARGS
    const char *profile_dir;            //  LP_PROFILE_DIR
    const char *state_dir;              //  LP_STATE_DIR (made 0700)
    const char *log_dir;                //  LP_LOG_DIR; launcher.log goes there
    const char **options;               //  "KEY=VALUE" each (LP_OPT_KEY)
    size_t option_count;
} lp_remote_config_t;

//  Finds lp-launch-<kind>: $LP_LAUNCHER_DIR, then <exe_dir>/../libexec/
//  luaparallel, then, for the lpcontroller of a build folder (exe_dir),
//  the source tree's src/launchers.
//  0 with path, or -1 with err naming the kind and the folders tried.
int   lp_remote_find (const char *kind, const char *exe_dir, char *path, size_t size,
                      char *err, size_t errlen);
//  True when option is KEY=VALUE with KEY of letters, digits and _, and
//  VALUE without a newline (it goes into the environment and a file).
bool  lp_remote_option_valid (const char *option);
//  The engines of a hosts list "h1:4,user@h2,[::1]%22:8": the sum of the
//  count after each host's last colon (1 for a host without one).
int   lp_remote_hosts_count (const char *hosts);
//  Copies config. NULL when out of memory.
lp_remote_t *lp_remote_new (const lp_remote_config_t *config);
void  lp_remote_destroy (lp_remote_t **self_p);
//  Writes launcher.env and runs `start`. 0, or -1 with err.
int   lp_remote_start (lp_remote_t *self, char *err, size_t errlen);
//  Reaps `start` when it has ended (non-blocking). true then, with
//  *status_p its waitpid status; false while it runs or once reaped.
bool  lp_remote_reap (lp_remote_t *self, int *status_p);
//  The pid of `start` while it runs, else 0.
int   lp_remote_pid (lp_remote_t *self);
//  What launcher.log says since start, on one line ("a | b | c"): the
//  lines naming a failure (with their sentence's next line) and the last
//  line, else the last lines; "" when none.
void  lp_remote_tail (lp_remote_t *self, char *out, size_t size);
//  Runs `stop` (up to LP_LAUNCHER_STOP_MSEC), then SIGTERM to what is
//  left of start's process group, SIGKILL after grace_msec. SIGCHLD must
//  be blocked in the calling thread. 0 when `stop` exited 0 (and
//  launcher.env is removed), -1 with err otherwise.
int   lp_remote_stop (lp_remote_t *self, int grace_msec, char *err, size_t errlen);
//  Self test
void  lp_remote_test (bool verbose);

#endif
