/*  lp_config.c - reads the profile's controller config file (see
    lp_config.h). The file runs in a fresh Lua state with no libraries and
    an empty _ENV, text chunks only, and a count hook that stops it after
    LP_CONFIG_MAX_INSTRUCTIONS: a config file can set values, not act. */
#include "lp_config.h"
#include "lp_defaults.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

static void
s_budget (lua_State *L, lua_Debug *ar)
{
    (void) ar;
    luaL_error (L, "config file runs too long");
}

//  Copies string field name of the table at -1; -1 when mistyped.
static int
s_string (lua_State *L, const char *name, char *out, size_t size, char *err, size_t errlen,
          const char *path)
{
    int type = lua_getfield (L, -1, name);
    int rc = 0;
    if (type == LUA_TSTRING)
        snprintf (out, size, "%s", lua_tostring (L, -1));
    else
    if (type != LUA_TNIL) {
        snprintf (err, errlen, "%s: %s must be a string", path, name);
        rc = -1;
    }
    lua_pop (L, 1);
    return rc;
}

//  Same, an integer also taken as its text (dashboard = 8080).
static int
s_string_or_number (lua_State *L, const char *name, char *out, size_t size, char *err,
                    size_t errlen, const char *path)
{
    lua_getfield (L, -1, name);
    bool integer = lua_isinteger (L, -1);
    if (integer)
        snprintf (out, size, "%lld", (long long) lua_tointeger (L, -1));
    lua_pop (L, 1);
    return integer? 0: s_string (L, name, out, size, err, errlen, path);
}

static int
s_integer (lua_State *L, const char *name, int *out, char *err, size_t errlen, const char *path)
{
    int type = lua_getfield (L, -1, name);
    int rc = 0;
    if (type == LUA_TNUMBER && lua_isinteger (L, -1) && lua_tointeger (L, -1) >= 0
    &&  lua_tointeger (L, -1) <= 1000000000)
        *out = (int) lua_tointeger (L, -1);
    else
    if (type != LUA_TNIL) {
        snprintf (err, errlen, "%s: %s must be a non-negative integer", path, name);
        rc = -1;
    }
    lua_pop (L, 1);
    return rc;
}

static int
s_boolean (lua_State *L, const char *name, int *out, char *err, size_t errlen, const char *path)
{
    int type = lua_getfield (L, -1, name);
    int rc = 0;
    if (type == LUA_TBOOLEAN)
        *out = lua_toboolean (L, -1);
    else
    if (type != LUA_TNIL) {
        snprintf (err, errlen, "%s: %s must be true or false", path, name);
        rc = -1;
    }
    lua_pop (L, 1);
    return rc;
}

//  engines: a count (integer >= 0) or a launcher's name. -1 when mistyped.
static int
s_engines (lua_State *L, lp_config_t *config, char *err, size_t errlen, const char *path)
{
    int type = lua_getfield (L, -1, "engines");
    int rc = 0;
    if (type == LUA_TNUMBER && lua_isinteger (L, -1) && lua_tointeger (L, -1) >= 0
    &&  lua_tointeger (L, -1) <= 1000000)
        snprintf (config->engines, sizeof config->engines, "%lld",
                  (long long) lua_tointeger (L, -1));
    else
    if (type == LUA_TSTRING && lua_rawlen (L, -1) > 0 && lua_rawlen (L, -1) < sizeof config->engines)
        snprintf (config->engines, sizeof config->engines, "%s", lua_tostring (L, -1));
    else
    if (type != LUA_TNIL) {
        snprintf (err, errlen, "%s: engines must be a count or a launcher name (\"ssh\", "
                  "\"mpi\", \"slurm\", ...)", path);
        rc = -1;
    }
    lua_pop (L, 1);
    return rc;
}

//  launcher = { key = value, ... }: string or number values, copied as
//  "key=value". -1 when mistyped.
static int
s_launcher (lua_State *L, lp_config_t *config, char *err, size_t errlen, const char *path)
{
    int type = lua_getfield (L, -1, "launcher");
    int rc = 0;
    if (type == LUA_TTABLE) {
        lua_pushnil (L);
        while (rc == 0 && lua_next (L, -2)) {
            if (lua_type (L, -2) != LUA_TSTRING
            ||  (lua_type (L, -1) != LUA_TSTRING && lua_type (L, -1) != LUA_TNUMBER)) {
                snprintf (err, errlen, "%s: launcher must be a table of name = string or "
                          "number", path);
                rc = -1;
            }
            else
            if (config->launcher_count == LP_LAUNCHER_OPTS_MAX) {
                snprintf (err, errlen, "%s: launcher has more than %d options", path,
                          LP_LAUNCHER_OPTS_MAX);
                rc = -1;
            }
            else {
                //  lua_tostring turns a number value into a string in place:
                //  the key is not touched, so lua_next goes on
                char *slot = config->launcher [config->launcher_count];
                int len = snprintf (slot, LP_CONFIG_OPTION_CHARS, "%s=%s",
                                    lua_tostring (L, -2), lua_tostring (L, -1));
                if (len < 0 || len >= LP_CONFIG_OPTION_CHARS) {
                    snprintf (err, errlen, "%s: launcher.%s is too long", path,
                              lua_tostring (L, -2));
                    rc = -1;
                }
                else
                    config->launcher_count++;
            }
            lua_pop (L, 1);
        }
        if (rc != 0)
            lua_pop (L, 1);             //  the key lua_next left
    }
    else
    if (type != LUA_TNIL) {
        snprintf (err, errlen, "%s: launcher must be a table", path);
        rc = -1;
    }
    lua_pop (L, 1);
    return rc;
}

int
lp_config_load (const char *path, lp_config_t *config, char *err, size_t errlen)
{
    FILE *probe = fopen (path, "r");
    if (!probe) {
        if (errno == ENOENT)
            return 0;
        snprintf (err, errlen, "%s: %s", path, strerror (errno));
        return -1;
    }
    fclose (probe);
    lua_State *L = luaL_newstate ();
    if (!L) {
        snprintf (err, errlen, "%s: out of memory", path);
        return -1;
    }
    int rc = -1;
    if (luaL_loadfilex (L, path, "t") != LUA_OK)
        snprintf (err, errlen, "%s", lua_tostring (L, -1));
    else {
        lua_newtable (L);               //  the file's _ENV
        lua_pushvalue (L, -1);
        lua_setupvalue (L, -3, 1);
        lua_insert (L, -2);
        lua_sethook (L, s_budget, LUA_MASKCOUNT, LP_CONFIG_MAX_INSTRUCTIONS);
        if (lua_pcall (L, 0, 0, 0) != LUA_OK)
            snprintf (err, errlen, "%s", lua_tostring (L, -1));
        else
        if (s_string (L, "scheduler", config->scheduler, sizeof config->scheduler, err, errlen, path) == 0
        &&  s_integer (L, "hwm", &config->hwm, err, errlen, path) == 0
        &&  s_integer (L, "heartbeat_msec", &config->heartbeat_msec, err, errlen, path) == 0
        &&  s_integer (L, "max_misses", &config->max_misses, err, errlen, path) == 0
        &&  s_string (L, "ip", config->ip, sizeof config->ip, err, errlen, path) == 0
        &&  s_string (L, "location", config->location, sizeof config->location, err, errlen, path) == 0
        &&  s_integer (L, "engine_memory_mb", &config->engine_memory_mb, err, errlen, path) == 0
        &&  s_boolean (L, "restart_engines", &config->restart_engines, err, errlen, path) == 0
        &&  s_integer (L, "replay_window_msec", &config->replay_window_msec, err, errlen, path) == 0
        &&  s_integer (L, "log_max_mb", &config->log_max_mb, err, errlen, path) == 0
        &&  s_integer (L, "log_keep", &config->log_keep, err, errlen, path) == 0
        &&  s_integer (L, "engine_wait_sec", &config->engine_wait_sec, err, errlen, path) == 0
        &&  s_integer (L, "ready_timeout_sec", &config->ready_timeout_sec, err, errlen, path) == 0
        &&  s_engines (L, config, err, errlen, path) == 0
        &&  s_launcher (L, config, err, errlen, path) == 0
        &&  s_string_or_number (L, "dashboard", config->dashboard, sizeof config->dashboard,
                                err, errlen, path) == 0)
            rc = 0;
    }
    lua_close (L);
    return rc;
}
