/*  lp_config.h - the profile's controller config file.

    <profile>/lpcontroller_config.lua is Lua, run in an empty environment
    (no libraries, text only, an instruction budget), and may set:
        scheduler = "leastload"     -- lru, plainrandom, weighted, twobin
        hwm = 2                     -- tasks outstanding per engine, 0 = any
        heartbeat_msec = 1000
        max_misses = 3
        ip = "127.0.0.1"
        location = "10.0.0.5"
        engine_memory_mb = 2048     -- per local engine, 0 = no cap
        restart_engines = true      -- restart crashed local engines
        replay_window_msec = 60000  -- replay guard window
        log_max_mb = 10             -- rotate log files past this, 0 = never
        log_keep = 5                -- rotated files kept per log
        engine_wait_sec = 60        -- local engines' wait for a lost controller
        dashboard = "127.0.0.1:8080" -- web dashboard, [ADDR:]PORT (or a port number)
        ready_timeout_sec = 60      -- engines must register by then
        engines = 4                 -- or a launcher: "ssh", "mpi", "slurm", ...
        launcher = { hosts = "h1:4,h2:8", partition = "debug" }
                                    -- the launcher's options (strings or numbers)
    Command-line options override it (--launcher-opt per key). */
#ifndef LP_CONFIG_H_INCLUDED
#define LP_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "lp_defaults.h"

#define LP_CONFIG_OPTION_CHARS     1024        //  "key=value" of one launcher option

typedef struct {
    char scheduler [32];                //  "" when unset
    int hwm;                            //  -1 when unset
    int heartbeat_msec;                 //  0 when unset
    int max_misses;                     //  0 when unset
    char ip [256];                      //  "" when unset
    char location [256];                //  "" when unset
    int engine_memory_mb;               //  -1 when unset
    int restart_engines;                //  -1 unset, 0 false, 1 true
    int replay_window_msec;             //  0 when unset
    int log_max_mb;                     //  -1 when unset
    int log_keep;                       //  -1 when unset
    int engine_wait_sec;                //  -1 when unset
    int ready_timeout_sec;              //  0 when unset
    char engines [64];                  //  a count or a launcher kind; "" unset
    char launcher [LP_LAUNCHER_OPTS_MAX][LP_CONFIG_OPTION_CHARS];
                                        //  "key=value" each
    int launcher_count;                 //  entries of launcher
    char dashboard [256];               //  "" when unset
} lp_config_t;

//  Reads path into config (fields the file does not set stay unset).
//  A missing file is not an error. 0, or -1 with err = "<path>: <problem>".
int lp_config_load (const char *path, lp_config_t *config, char *err, size_t errlen);

#endif
