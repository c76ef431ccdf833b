/*  =========================================================================
    lp_proto - the protocol's names and positions (see lp_proto.h)
    =========================================================================
*/

#include "lp_prelude.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_value.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#define S_REQUEST_SUFFIX "_request"
#define S_REPLY_SUFFIX   "_reply"

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t len = strlen (s), slen = strlen (suffix);
    return len > slen && memcmp (s + len - slen, suffix, slen) == 0;
}

bool
lp_proto_is_request (const char *msg_type)
{
    return msg_type && s_ends_with (msg_type, S_REQUEST_SUFFIX);
}

void
lp_proto_ping_encode (uint8_t out [LP_HB_BYTES], uint64_t seq)
{
    memcpy (out, "LPHB", 4);
    for (int i = 0; i < 8; i++)
        out [4 + i] = (uint8_t) (seq >> (56 - 8 * i));
}

bool
lp_proto_ping_decode (const uint8_t *data, size_t size, uint64_t *seq_p)
{
    if (size != LP_HB_BYTES || memcmp (data, "LPHB", 4) != 0)
        return false;
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = (seq << 8) | data [4 + i];
    if (seq_p)
        *seq_p = seq;
    return true;
}

void
lp_proto_pong_encode (uint8_t out [LP_PONG_BYTES], uint64_t seq, uint64_t rss)
{
    lp_proto_ping_encode (out, seq);
    for (int i = 0; i < 8; i++)
        out [LP_HB_BYTES + i] = (uint8_t) (rss >> (56 - 8 * i));
}

bool
lp_proto_pong_decode (const uint8_t *data, size_t size, uint64_t *seq_p, uint64_t *rss_p)
{
    if (size != LP_HB_BYTES && size != LP_PONG_BYTES)
        return false;
    if (!lp_proto_ping_decode (data, LP_HB_BYTES, seq_p))
        return false;
    uint64_t rss = 0;
    for (int i = 0; size == LP_PONG_BYTES && i < 8; i++)
        rss = (rss << 8) | data [LP_HB_BYTES + i];
    if (rss_p)
        *rss_p = rss;
    return true;
}

const char *
lp_proto_reply_type (const char *request_type, char *out, size_t size)
{
    assert (out);
    if (!lp_proto_is_request (request_type))
        return LP_ERROR_REPLY;
    size_t stem = strlen (request_type) - strlen (S_REQUEST_SUFFIX);
    if (stem + strlen (S_REPLY_SUFFIX) + 1 > size)
        return LP_ERROR_REPLY;
    memcpy (out, request_type, stem);
    memcpy (out + stem, S_REPLY_SUFFIX, strlen (S_REPLY_SUFFIX) + 1);
    return out;
}

bool
lp_proto_is_engine_request (const char *msg_type)
{
    static const char *types [] = {
        LP_EXECUTE_REQUEST, LP_APPLY_REQUEST, LP_MAP_REQUEST,
        LP_PUSH_REQUEST, LP_PULL_REQUEST, LP_CLEAR_REQUEST, NULL
    };
    if (!msg_type)
        return false;
    for (int i = 0; types [i]; i++)
        if (streq (msg_type, types [i]))
            return true;
    return false;
}

//  A fixed amount of integer work, timed on the wall clock: an engine
//  that gets less of a CPU (throttled, overloaded, a slower core) takes
//  longer. Best of LP_DOCTOR_CALIBRATION_RUNS, so that one preemption on
//  a busy machine does not make a healthy engine look slow.
static int64_t
s_calibration_usec (void)
{
    int64_t best = INT64_MAX;
    for (int run = 0; run < LP_DOCTOR_CALIBRATION_RUNS; run++) {
        int64_t start = zclock_usecs ();
        volatile uint64_t x = 1;
        for (uint64_t i = 0; i < LP_DOCTOR_CALIBRATION_LOOPS; i++)
            x = x * 6364136223846793005u + i;
        int64_t took = zclock_usecs () - start;
        if (took < best)
            best = took;
    }
    return best;
}

static int64_t
s_mem_available_kb (void)
{
    FILE *file = fopen ("/proc/meminfo", "r");
    char line [256];
    long long kb = -1;
    while (file && fgets (line, sizeof line, file))
        if (sscanf (line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    if (file)
        fclose (file);
    return (int64_t) kb;
}

int
lp_proto_set_place (lp_value_t *map)
{
    char host [256] = "", cwd [4096] = "";
    gethostname (host, sizeof host - 1);
    if (!getcwd (cwd, sizeof cwd))
        cwd [0] = 0;
    const char *user = getenv ("USER");
    struct passwd *pw = getpwuid (getuid ());
    if (pw && pw->pw_name)
        user = pw->pw_name;
    return lp_value_set (map, LP_FACT_HOST, lp_value_string (host))
        || lp_value_set (map, LP_FACT_PID, lp_value_int ((int64_t) getpid ()))
        || lp_value_set (map, LP_FACT_USER, lp_value_string (user? user: ""))
        || lp_value_set (map, LP_FACT_CWD, lp_value_string (cwd))? -1: 0;
}

lp_value_t *
lp_proto_facts (void)
{
    double load [1] = { -1 };
    if (getloadavg (load, 1) != 1)
        load [0] = -1;
    int64_t calibration = s_calibration_usec ();
    //  Read last: as close to the reply as it can be
    int64_t clock = lp_util_wall_usec ();
    lp_value_t *facts = lp_value_map ();
    if (facts
    && (lp_proto_set_place (facts)
    ||  lp_value_set (facts, LP_FACT_VERSION, lp_value_string (LP_VERSION_STRING))
    ||  lp_value_set (facts, LP_FACT_PROTOCOL, lp_value_string (LP_PROTOCOL_VERSION))
    ||  lp_value_set (facts, LP_FACT_MEM_FREE, lp_value_int (s_mem_available_kb ()))
    ||  lp_value_set (facts, LP_FACT_LOAD, lp_value_number (load [0]))
    ||  lp_value_set (facts, LP_FACT_CALIBRATION, lp_value_int (calibration))
    ||  lp_value_set (facts, LP_FACT_CLOCK, lp_value_int (clock))))
        lp_value_destroy (&facts);
    return facts;
}

void
lp_proto_test (bool verbose)
{
    printf (" * proto: ");
    fflush (stdout);
    //  @selftest
    char out [64];
    assert (streq (lp_proto_reply_type (LP_EXECUTE_REQUEST, out, sizeof (out)), LP_EXECUTE_REPLY));
    assert (streq (lp_proto_reply_type (LP_ABORT_REQUEST, out, sizeof (out)), LP_ABORT_REPLY));
    assert (streq (lp_proto_reply_type ("x_request", out, sizeof (out)), "x_reply"));
    assert (streq (lp_proto_reply_type ("_request", out, sizeof (out)), LP_ERROR_REPLY));
    assert (streq (lp_proto_reply_type ("request", out, sizeof (out)), LP_ERROR_REPLY));
    assert (streq (lp_proto_reply_type ("execute_reply", out, sizeof (out)), LP_ERROR_REPLY));
    assert (streq (lp_proto_reply_type (NULL, out, sizeof (out)), LP_ERROR_REPLY));
    assert (streq (lp_proto_reply_type (LP_EXECUTE_REQUEST, out, 8), LP_ERROR_REPLY));
    assert (lp_proto_is_engine_request (LP_MAP_REQUEST));
    assert (!lp_proto_is_engine_request (LP_SHUTDOWN_REQUEST));
    assert (!lp_proto_is_engine_request (NULL));
    assert (lp_proto_is_request (LP_STATUS_REQUEST));
    assert (!lp_proto_is_request (LP_STREAM));
    assert (LP_FRAME_BUFFERS == LP_FRAMES_MIN);
    uint8_t pong [LP_PONG_BYTES];
    uint64_t seq = 0, rss = 1;
    lp_proto_pong_encode (pong, 0x0102030405060708ULL, 123456789);
    assert (lp_proto_pong_decode (pong, LP_PONG_BYTES, &seq, &rss));
    assert (seq == 0x0102030405060708ULL && rss == 123456789);
    //  An echoed ping is a pong that tells no size
    assert (lp_proto_pong_decode (pong, LP_HB_BYTES, &seq, &rss) && rss == 0);
    assert (!lp_proto_ping_decode (pong, LP_PONG_BYTES, NULL));
    assert (!lp_proto_pong_decode (pong, LP_PONG_BYTES - 1, NULL, NULL));
    //  @end
    printf ("%sOK\n", verbose? "\n": "");
}
