/*  =========================================================================
    lpstatus - print the engine table of a running luaparallel cluster

    Usage: lpstatus [--file lp-client.json | --profile NAME] [--timeout MS]

    A thin client of libluaparallel, used by `cluster.sh status`: it
    connects with the client connection file (from --file, or from the
    profile directory $LP_HOME/profile_NAME, default ~/.luaparallel), asks
    the controller for its engine table with lp_client_status and prints
    one row per engine: id, host, pid, state, queue. Only the public API
    of include/luaparallel.h is used, so it doubles as a usage example.

    Exit status: 0 when the table was printed, 1 when there is no
    controller (no connection file) or it did not answer, 2 on bad usage.
    =========================================================================
*/
#include <luaparallel.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LPSTATUS_TIMEOUT_MSEC 5000

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: lpstatus [--file lp-client.json | --profile NAME] [--timeout MS]\n"
        "Prints the engines of a running controller: id, host, pid, state, queue.\n"
        "Without --file the connection file of the profile is used:\n"
        "  $LP_HOME/profile_NAME/security/lp-client.json (LP_HOME default ~/.luaparallel,\n"
        "  NAME default \"default\").\n");
}

//  Client connection file of a profile, in buf; -1 when it does not fit
//  or there is no home directory to look in.
static int
s_profile_file (const char *profile, char *buf, size_t size)
{
    const char *lp_home = getenv ("LP_HOME");
    int n;
    if (lp_home && *lp_home)
        n = snprintf (buf, size, "%s/profile_%s/security/lp-client.json",
                      lp_home, profile);
    else {
        const char *home = getenv ("HOME");
        if (!home || !*home)
            return -1;
        n = snprintf (buf, size, "%s/.luaparallel/profile_%s/security/lp-client.json",
                      home, profile);
    }
    return (n < 0 || (size_t) n >= size)? -1: 0;
}

//  Text of a map field for the table: strings as they are, integers in
//  decimal, anything missing as "-". Writes into buf.
static const char *
s_field (const lp_value_t *row, const char *key, char *buf, size_t size)
{
    const lp_value_t *v = lp_value_get (row, key);
    if (!v)
        return "-";
    switch (lp_value_type (v)) {
        case LP_STRING:
        case LP_BYTES: {
            size_t len = 0;
            const char *s = lp_value_as_string (v, &len);
            snprintf (buf, size, "%.*s", (int) (len < size? len: size - 1), s? s: "");
            return buf;
        }
        case LP_INT:
            snprintf (buf, size, "%" PRId64, lp_value_as_int (v));
            return buf;
        case LP_NUMBER:
            snprintf (buf, size, "%g", lp_value_as_number (v));
            return buf;
        case LP_BOOL:
            return lp_value_as_bool (v)? "true": "false";
        default:
            return "-";
    }
}

int
main (int argc, char *argv [])
{
    const char *file = NULL;
    const char *profile = "default";
    int timeout_ms = LPSTATUS_TIMEOUT_MSEC;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf (stderr, "lpstatus: unknown option or missing value: %s\n", arg);
            s_usage (stderr);
            return 2;
        }
        if (strcmp (arg, "--file") == 0)
            file = argv [++i];
        else
        if (strcmp (arg, "--profile") == 0)
            profile = argv [++i];
        else
        if (strcmp (arg, "--timeout") == 0) {
            char *end = NULL;
            errno = 0;
            long t = strtol (argv [++i], &end, 10);
            if (errno || !end || *end || t <= 0 || t > INT_MAX) {
                fprintf (stderr, "lpstatus: --timeout wants milliseconds > 0\n");
                return 2;
            }
            timeout_ms = (int) t;
        }
        else {
            fprintf (stderr, "lpstatus: unknown option: %s\n", arg);
            s_usage (stderr);
            return 2;
        }
    }

    char path [PATH_MAX];
    if (!file) {
        if (s_profile_file (profile, path, sizeof path)) {
            fprintf (stderr, "lpstatus: cannot locate profile %s (set LP_HOME or HOME)\n", profile);
            return 1;
        }
        file = path;
        struct stat st;
        if (stat (file, &st)) {
            printf ("no controller running for profile %s\n", profile);
            return 1;
        }
    }

    lp_client_t *client = lp_client_connect (file, timeout_ms);
    if (!client) {
        fprintf (stderr, "lpstatus: cannot connect with %s: %s\n", file, lp_last_error ());
        return 1;
    }
    lp_value_t *table = lp_client_status (client, timeout_ms);
    if (!table) {
        fprintf (stderr, "lpstatus: no status from the controller: %s\n",
                 lp_client_error (client));
        lp_client_destroy (&client);
        return 1;
    }
    int rc = 0;
    if (lp_value_type (table) != LP_ARRAY) {
        fprintf (stderr, "lpstatus: unexpected status reply (%s)\n",
                 lp_type_name (lp_value_type (table)));
        rc = 1;
    }
    else {
        size_t count = lp_value_len (table);
        printf ("%-4s  %-24s  %-8s  %-6s  %s\n", "id", "host", "pid", "state", "queue");
        for (size_t i = 0; i < count; i++) {
            const lp_value_t *row = lp_value_at (table, i);
            if (!row || lp_value_type (row) != LP_MAP)
                continue;
            char id [32], host [256], pid [32], state [32], queue [32];
            printf ("%-4s  %-24s  %-8s  %-6s  %s\n",
                    s_field (row, "id", id, sizeof id),
                    s_field (row, "host", host, sizeof host),
                    s_field (row, "pid", pid, sizeof pid),
                    s_field (row, "state", state, sizeof state),
                    s_field (row, "queue", queue, sizeof queue));
        }
        printf ("%zu engine%s\n", count, count == 1? "": "s");
    }
    lp_value_destroy (&table);
    lp_client_destroy (&client);
    return rc;
}
