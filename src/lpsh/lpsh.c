/*  =========================================================================
    lpsh - the interactive luaparallel shell

    A Lua 5.4 REPL in the manner of the stand-alone `lua`, with magics
    (%px, %%px, %autopx, ...) that run code on the engines. This file is
    the C shell around it: command line, Lua state, line input (libedit
    when stdin is a terminal, plain reads otherwise), the history file and
    SIGINT. The REPL itself (parsing, magics, output) is lua/lpsh.lua,
    which gets the `lpsh.native` table below and `luaparallel` (the Lua
    module, linked in) through package.preload.

    Progress bars (lpsh.lua) are drawn only when stdout is a terminal
    (native.stdout_tty), as wide as it is (native.columns).

    SIGINT has three modes, set by lpsh.lua through native.sigmode:
      0 at the prompt: the read is interrupted (no SA_RESTART), the line
        is dropped and a fresh prompt shown (non-interactive: exit);
      1 while local Lua code runs: as lua.c does, a hook raises
        "interrupted!" in the running code;
      2 while waiting for engines: only counted (native.sigints), the REPL
        interrupts the engines on the first and gives up on the second.

    lpsh.lua is looked up in $LPSH_LUA_DIR, then <bindir>/../share/
    luaparallel/lua (the install), then the source tree (LPSH_SOURCE_DIR).
    =========================================================================
*/
#include "lp_util.h"
#include <lauxlib.h>
#include <lualib.h>
#include <histedit.h>
#include <locale.h>
#include <signal.h>
#include <unistd.h>
#include <limits.h>
#include <libgen.h>
#include <errno.h>
#include <sys/ioctl.h>

#ifndef LPSH_SOURCE_DIR
#   define LPSH_SOURCE_DIR "."
#endif
#ifndef LPSH_INSTALL_DIR
#   define LPSH_INSTALL_DIR "/usr/local/share/luaparallel/lua"
#endif

#define LPSH_HISTORY_NAME   "lpsh_history"

int luaopen_luaparallel (lua_State *L);

//  Process-wide state: one shell per process.
static lua_State *s_L;                  //  main Lua state (for the hook)
static volatile sig_atomic_t s_sigmode; //  0 prompt, 1 local code, 2 wait
static volatile sig_atomic_t s_sigints; //  SIGINTs since the last reset
static bool s_interactive;              //  stdin is a terminal
static EditLine *s_el;                  //  libedit, interactive only
static History *s_hist;                 //  history, interactive only
static char s_history_path [PATH_MAX];  //  "" = no history file
static char s_prompt [64];              //  current prompt

//  ---------------------------------------------------------------------
//  SIGINT

static void
s_lstop (lua_State *L, lua_Debug *ar)
{
    (void) ar;
    lua_sethook (L, NULL, 0, 0);
    luaL_error (L, "interrupted!");
}

static void
s_on_sigint (int sig)
{
    (void) sig;
    s_sigints++;
    if (s_sigmode == 1 && s_L)
        lua_sethook (s_L, s_lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    else
    if (s_sigmode == 0 && !s_interactive) {
        signal (SIGINT, SIG_DFL);
        raise (SIGINT);
    }
}

static void
s_install_sigint (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_sigint;
    sigemptyset (&sa.sa_mask);
    sa.sa_flags = 0;                    //  no SA_RESTART: reads see EINTR
    sigaction (SIGINT, &sa, NULL);
}

//  ---------------------------------------------------------------------
//  Native functions for lpsh.lua

static char *
s_el_prompt (EditLine *el)
{
    (void) el;
    return s_prompt;
}

//  readline (prompt) -> line | nil (end of input) | false (Ctrl-C)
static int
l_readline (lua_State *L)
{
    const char *prompt = luaL_optstring (L, 1, "> ");
    if (s_el) {
        snprintf (s_prompt, sizeof s_prompt, "%s", prompt);
        s_sigints = 0;
        int count = 0;
        errno = 0;
        const char *line = el_gets (s_el, &count);
        if (!line || count <= 0) {
            if (s_sigints > 0 || errno == EINTR) {
                s_sigints = 0;
                fputs ("\n", stdout);
                fflush (stdout);
                lua_pushboolean (L, 0);
                return 1;
            }
            lua_pushnil (L);
            return 1;
        }
        size_t len = strlen (line);
        while (len > 0 && (line [len - 1] == '\n' || line [len - 1] == '\r'))
            len--;
        lua_pushlstring (L, line, len);
        return 1;
    }
    //  Not a terminal: no prompt, no echo; lines of any length.
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getline (&buf, &cap, stdin);
    if (n < 0) {
        free (buf);
        lua_pushnil (L);
        return 1;
    }
    while (n > 0 && (buf [n - 1] == '\n' || buf [n - 1] == '\r'))
        n--;
    lua_pushlstring (L, buf, (size_t) n);
    free (buf);
    return 1;
}

static int
l_add_history (lua_State *L)
{
    const char *line = luaL_checkstring (L, 1);
    if (s_hist && *line) {
        HistEvent ev;
        history (s_hist, &ev, H_ENTER, line);
        if (*s_history_path)
            history (s_hist, &ev, H_SAVE, s_history_path);
    }
    return 0;
}

static int
l_sigmode (lua_State *L)
{
    int mode = (int) luaL_checkinteger (L, 1);
    s_sigmode = mode;
    if (mode != 1)
        lua_sethook (L, NULL, 0, 0);
    return 0;
}

//  sigints ([reset]) -> count of SIGINTs since the last reset
static int
l_sigints (lua_State *L)
{
    lua_pushinteger (L, s_sigints);
    if (lua_toboolean (L, 1))
        s_sigints = 0;
    return 1;
}

static int
l_now (lua_State *L)
{
    lua_pushinteger (L, (lua_Integer) zclock_mono ());
    return 1;
}

//  stdout_tty () -> stdout is a terminal (lpsh draws progress bars then)
static int
l_stdout_tty (lua_State *L)
{
    lua_pushboolean (L, isatty (STDOUT_FILENO));
    return 1;
}

//  columns () -> width of the terminal on stdout (80 when unknown)
static int
l_columns (lua_State *L)
{
    struct winsize ws;
    int cols = 80;
    if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        cols = ws.ws_col;
    lua_pushinteger (L, cols);
    return 1;
}

static const luaL_Reg s_native [] = {
    { "readline", l_readline },
    { "add_history", l_add_history },
    { "sigmode", l_sigmode },
    { "sigints", l_sigints },
    { "now", l_now },
    { "stdout_tty", l_stdout_tty },
    { "columns", l_columns },
    { NULL, NULL }
};

static int
s_open_native (lua_State *L)
{
    luaL_newlib (L, s_native);
    lua_pushboolean (L, s_interactive);
    lua_setfield (L, -2, "interactive");
    lua_pushstring (L, s_history_path);
    lua_setfield (L, -2, "history");
    return 1;
}

//  ---------------------------------------------------------------------
//  Setup

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: lpsh [--profile NAME | --profile-dir DIR | --file lp-client.json]\n"
        "            [--wait N] [--timeout MS] [--bail] [-e CODE]... [SCRIPT]\n"
        "The interactive luaparallel shell: a Lua REPL where rc (the client) and\n"
        "dv (a direct view on all engines) are ready, and %%px, %%%%px, %%autopx,\n"
        "%%pxresult, %%result, %%targets, %%pxconfig, %%engines run code on the\n"
        "engines, %%history and %%fetch ID read the task store (%%help in the shell\n"
        "explains them).\n"
        "  --profile NAME     cluster profile ($LP_HOME or ~/.luaparallel/profile_NAME)\n"
        "  --profile-dir DIR  profile folder\n"
        "  --file FILE        client connection file (DIR/security/lp-client.json)\n"
        "  --wait N           wait until N engines are registered (default 0)\n"
        "  --timeout MS       connection and --wait deadline (default 30000)\n"
        "  --bail             stop at the first error (non-interactive input)\n"
        "  -e CODE            run CODE as one chunk (or one magic) and exit; may repeat\n"
        "  SCRIPT             read commands from SCRIPT instead of stdin\n"
        "Without a terminal on stdin, commands are read from it without prompts\n"
        "or echo. The exit status is 1 when any command failed (remote or local).\n");
}

//  Finds lpsh.lua; fills dir. 0 or -1.
static int
s_find_lua_dir (const char *argv0, char *dir, size_t size)
{
    char path [PATH_MAX];
    const char *env = getenv ("LPSH_LUA_DIR");
    if (env && *env) {
        snprintf (path, sizeof path, "%s/lpsh.lua", env);
        if (access (path, R_OK) == 0) {
            snprintf (dir, size, "%s", env);
            return 0;
        }
    }
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe [n] = 0;
        char *bindir = dirname (exe);
        snprintf (path, sizeof path, "%s/../share/luaparallel/lua/lpsh.lua", bindir);
        if (access (path, R_OK) == 0) {
            snprintf (dir, size, "%s/../share/luaparallel/lua", bindir);
            return 0;
        }
    }
    (void) argv0;
    const char *fixed [] = { LPSH_INSTALL_DIR, LPSH_SOURCE_DIR };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed [0]; i++) {
        snprintf (path, sizeof path, "%s/lpsh.lua", fixed [i]);
        if (access (path, R_OK) == 0) {
            snprintf (dir, size, "%s", fixed [i]);
            return 0;
        }
    }
    return -1;
}

//  Profile folder for the history: from --profile-dir, from a connection
//  file DIR/security/lp-client.json, or from --profile.
static void
s_profile_dir (const char *profile_dir, const char *file, const char *profile,
               char *out, size_t size)
{
    out [0] = 0;
    if (profile_dir) {
        snprintf (out, size, "%s", profile_dir);
        return;
    }
    if (file) {
        char copy [PATH_MAX];
        snprintf (copy, sizeof copy, "%s", file);
        char *dir = dirname (copy);                 //  .../security
        if (streq (basename (dir), "security")) {
            char copy2 [PATH_MAX];
            snprintf (copy2, sizeof copy2, "%s", dir);
            snprintf (out, size, "%s", dirname (copy2));
        }
        else
            snprintf (out, size, "%s", dir);
        return;
    }
    if (lp_util_profile_dir (profile, out, size))
        out [0] = 0;
}

static int
s_msghandler (lua_State *L)
{
    const char *msg = lua_tostring (L, 1);
    if (!msg)
        msg = luaL_tolstring (L, 1, NULL);
    luaL_traceback (L, L, msg, 1);
    return 1;
}

int
main (int argc, char **argv)
{
    const char *profile = NULL, *profile_dir = NULL, *file = NULL, *script = NULL;
    int wait_n = 0, timeout = 30000;
    bool bail = false;
    const char **execs = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    int nexecs = 0;
    if (!execs)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        bool more = i + 1 < argc;
        if ((streq (a, "--help") || streq (a, "-h"))) {
            s_usage (stdout);
            free (execs);
            return 0;
        }
        else if (streq (a, "--profile") && more)      profile = argv [++i];
        else if (streq (a, "--profile-dir") && more)  profile_dir = argv [++i];
        else if (streq (a, "--file") && more)         file = argv [++i];
        else if (streq (a, "--wait") && more)         wait_n = atoi (argv [++i]);
        else if (streq (a, "--timeout") && more)      timeout = atoi (argv [++i]);
        else if (streq (a, "-e") && more)             execs [nexecs++] = argv [++i];
        else if (streq (a, "--bail"))                 bail = true;
        else if (a [0] != '-' && !script)             script = a;
        else {
            fprintf (stderr, "lpsh: unknown or incomplete option '%s'\n", a);
            s_usage (stderr);
            free (execs);
            return 2;
        }
    }
    if (script && !freopen (script, "r", stdin)) {
        fprintf (stderr, "lpsh: cannot open %s: %s\n", script, strerror (errno));
        free (execs);
        return 1;
    }
    s_interactive = !script && nexecs == 0 && isatty (STDIN_FILENO);

    char lua_dir [PATH_MAX];
    if (s_find_lua_dir (argv [0], lua_dir, sizeof lua_dir)) {
        fprintf (stderr, "lpsh: cannot find lpsh.lua (set LPSH_LUA_DIR)\n");
        free (execs);
        return 1;
    }
    char conn_file [PATH_MAX] = "";
    char pdir [PATH_MAX - 64];          //  room for "/security/lp-client.json"
    s_profile_dir (profile_dir, file, profile, pdir, sizeof pdir);
    if (file)
        snprintf (conn_file, sizeof conn_file, "%s", file);
    else
    if (profile_dir || profile)
        snprintf (conn_file, sizeof conn_file, "%s/security/lp-client.json", pdir);

    if (s_interactive && *pdir) {
        snprintf (s_history_path, sizeof s_history_path, "%s/%s", pdir, LPSH_HISTORY_NAME);
        setlocale (LC_CTYPE, "");
        s_hist = history_init ();
        s_el = el_init ("lpsh", stdin, stdout, stderr);
        if (s_hist && s_el) {
            HistEvent ev;
            history (s_hist, &ev, H_SETSIZE, LPSH_HISTORY_SIZE);
            history (s_hist, &ev, H_SETUNIQUE, 1);
            history (s_hist, &ev, H_LOAD, s_history_path);
            el_set (s_el, EL_EDITOR, "emacs");
            el_set (s_el, EL_SIGNAL, 0);
            el_set (s_el, EL_PROMPT, s_el_prompt);
            el_set (s_el, EL_HIST, history, s_hist);
            el_source (s_el, NULL);
        }
    }
    else
    if (s_interactive) {
        s_el = el_init ("lpsh", stdin, stdout, stderr);
        if (s_el) {
            el_set (s_el, EL_EDITOR, "emacs");
            el_set (s_el, EL_SIGNAL, 0);
            el_set (s_el, EL_PROMPT, s_el_prompt);
        }
    }
    s_install_sigint ();

    lua_State *L = luaL_newstate ();
    if (!L) {
        fprintf (stderr, "lpsh: out of memory\n");
        free (execs);
        return 1;
    }
    s_L = L;
    luaL_openlibs (L);
    luaL_getsubtable (L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction (L, luaopen_luaparallel);
    lua_setfield (L, -2, "luaparallel");
    lua_pushcfunction (L, s_open_native);
    lua_setfield (L, -2, "lpsh.native");
    lua_pop (L, 1);

    //  package.path: lpsh's folder first (for lpsh_*.lua)
    lua_getglobal (L, "package");
    lua_pushfstring (L, "%s/?.lua;", lua_dir);
    lua_getfield (L, -2, "path");
    lua_concat (L, 2);
    lua_setfield (L, -2, "path");
    lua_pop (L, 1);

    int status = 1;
    lua_pushcfunction (L, s_msghandler);
    char main_path [PATH_MAX + 16];
    snprintf (main_path, sizeof main_path, "%s/lpsh.lua", lua_dir);
    if (luaL_loadfile (L, main_path) != LUA_OK) {
        fprintf (stderr, "lpsh: %s\n", lua_tostring (L, -1));
        goto done;
    }
    if (lua_pcall (L, 0, 1, 1) != LUA_OK) {
        fprintf (stderr, "lpsh: %s\n", lua_tostring (L, -1));
        goto done;
    }
    //  main (options) -> exit status
    lua_createtable (L, 0, 8);
    if (*conn_file) {
        lua_pushstring (L, conn_file);
        lua_setfield (L, -2, "file");
    }
    lua_pushinteger (L, wait_n);
    lua_setfield (L, -2, "wait");
    lua_pushinteger (L, timeout);
    lua_setfield (L, -2, "timeout");
    lua_pushboolean (L, bail);
    lua_setfield (L, -2, "bail");
    lua_createtable (L, nexecs, 0);
    for (int i = 0; i < nexecs; i++) {
        lua_pushstring (L, execs [i]);
        lua_rawseti (L, -2, i + 1);
    }
    lua_setfield (L, -2, "exec");
    if (lua_pcall (L, 1, 1, 1) != LUA_OK) {
        fprintf (stderr, "lpsh: %s\n", lua_tostring (L, -1));
        goto done;
    }
    status = (int) lua_tointeger (L, -1);

done:
    fflush (stdout);
    lua_close (L);
    s_L = NULL;
    if (s_el)
        el_end (s_el);
    if (s_hist)
        history_end (s_hist);
    free (execs);
    return status;
}
