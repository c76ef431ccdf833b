/*  garbage.c - junk sent to every socket the controller binds is dropped

    Reads both connection files (lp-engine.json and lp-client.json from
    $LP_PROFILE_DIR/security) and, with raw libzmq and raw TCP, sends to
    every endpoint: a message signed with a random key (an execute request
    that would set a global if it were accepted), random frames, truncated
    and hostile msgpack after a valid-looking delimiter and signature, an
    empty message, 100 MB of junk, and raw bytes that are not ZMTP at all.
    Then the cluster must still serve: 4 engines, correct answers, the
    global untouched, and the controller log mentions dropped messages.
*/
#include "lp_testlib.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#define BIG_JUNK_BYTES (100 * 1024 * 1024)

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t
s_rand (void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static void
s_fill (void *buf, size_t len)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t) s_rand ();
}

//  Sends one multipart message of nframes (data, size) pairs.
static void
s_send (void *sock, const char *what, int nframes, const void **data, const size_t *size)
{
    for (int i = 0; i < nframes; i++) {
        int rc = zmq_send (sock, data[i], size[i], i < nframes - 1 ? ZMQ_SNDMORE : 0);
        CHECK (rc >= 0 || zmq_errno () == EAGAIN, "%s: zmq_send frame %d: %s", what, i,
               zmq_strerror (zmq_errno ()));
    }
}

//  Well-formed frames of an execute request that sets global `hacked`,
//  signed with a random key instead of the cluster's.
static void
s_send_wrong_signature (void *sock, int target)
{
    char sig[65];
    for (int i = 0; i < 64; i++)
        sig[i] = "0123456789abcdef"[s_rand () % 16];
    sig[64] = 0;
    //  msgpack, written out: header map with the required fields
    uint8_t header[512];
    size_t h = 0;
    header[h++] = 0x87;         //  map of 7
    const char *kv[] = {
        "msg_id", "0123456789abcdef0123456789abcdef",
        "msg_type", "execute_request",
        "session", "fedcba9876543210fedcba9876543210",
        "username", "attacker",
        "date", "2026-01-01T00:00:00.000000Z",
        "version", "1.0" };
    for (int i = 0; i < 12; i++) {
        size_t len = strlen (kv[i]);
        header[h++] = 0xd9;
        header[h++] = (uint8_t) len;
        memcpy (header + h, kv[i], len);
        h += len;
    }
    header[h++] = 0xa7; memcpy (header + h, "targets", 7); h += 7;
    header[h++] = 0x91; header[h++] = (uint8_t) (target & 0x7f);
    const uint8_t empty = 0x80;
    uint8_t content[128];
    size_t c = 0;
    content[c++] = 0x81;
    content[c++] = 0xa4; memcpy (content + c, "code", 4); c += 4;
    const char *code = "hacked = true";
    content[c++] = 0xa0 | (uint8_t) strlen (code);
    memcpy (content + c, code, strlen (code)); c += strlen (code);
    const void *data[] = { "<LPMSG>", sig, header, &empty, &empty, content };
    size_t size[] = { 7, 64, h, 1, 1, c };
    s_send (sock, "wrong signature", 6, data, size);
}

static void
s_send_random_frames (void *sock)
{
    for (int m = 0; m < 20; m++) {
        int nframes = 1 + (int) (s_rand () % 9);
        uint8_t buf[9][600];
        const void *data[9];
        size_t size[9];
        for (int i = 0; i < nframes; i++) {
            size[i] = s_rand () % sizeof buf[i];
            s_fill (buf[i], size[i]);
            data[i] = buf[i];
        }
        if (m % 2 == 0) {           //  half of them with a real delimiter in front
            data[0] = "<LPMSG>";
            size[0] = 7;
        }
        s_send (sock, "random frames", nframes, data, size);
    }
}

//  Hostile and truncated msgpack after a valid-looking delimiter and a
//  hex signature (which cannot verify: the hostile bytes come first if a
//  receiver unpacks before verifying).
static void
s_send_truncated (void *sock)
{
    static const uint8_t hostile[][6] = {
        { 0xdf, 0xff, 0xff, 0xff, 0xff },       //  map32 of 4 G entries, nothing after
        { 0xdd, 0xff, 0xff, 0xff, 0xff },       //  array32 of 4 G entries
        { 0xdb, 0xff, 0xff, 0xff, 0xf0, 0x41 }, //  str32 of 4 GB, 1 byte given
        { 0xc6, 0x7f, 0xff, 0xff, 0xff },       //  bin32 of 2 GB
        { 0x87, 0xa6, 'm', 's', 'g', '_' },     //  map of 7 cut inside a key
        { 0xc1 },                               //  never-used byte
    };
    static const size_t hostile_len[] = { 5, 5, 6, 5, 6, 1 };
    char sig[65];
    memset (sig, 'a', 64);
    sig[64] = 0;
    const uint8_t empty = 0x80;
    for (size_t k = 0; k < sizeof hostile_len / sizeof hostile_len[0]; k++) {
        const void *data[] = { "<LPMSG>", sig, hostile[k], hostile[k], hostile[k], hostile[k] };
        size_t size[] = { 7, 64, hostile_len[k], hostile_len[k], hostile_len[k], hostile_len[k] };
        s_send (sock, "truncated msgpack", 6, data, size);
        const void *data2[] = { "<LPMSG>", sig, &empty, &empty, &empty, hostile[k] };
        size_t size2[] = { 7, 64, 1, 1, 1, hostile_len[k] };
        s_send (sock, "truncated msgpack", 6, data2, size2);
        //  too few frames
        s_send (sock, "too few frames", 3, data, size);
    }
}

static void
s_send_empty (void *sock)
{
    const void *data[] = { "" };
    size_t size[] = { 0 };
    s_send (sock, "empty message", 1, data, size);
    const void *data2[] = { "", "", "", "", "", "", "" };
    size_t size2[] = { 0, 0, 0, 0, 0, 0, 0 };
    s_send (sock, "empty frames", 7, data2, size2);
}

//  100 MB of junk where a header belongs, behind a delimiter and a
//  signature, so a receiver has to hash it (or bound it) before dropping it.
static void
s_send_big (void *sock, const uint8_t *junk)
{
    const uint8_t empty = 0x80;
    char sig[65];
    memset (sig, 'b', 64);
    const void *data[] = { "<LPMSG>", sig, junk, &empty, &empty, &empty };
    size_t size[] = { 7, 64, BIG_JUNK_BYTES, 1, 1, 1 };
    s_send (sock, "100 MB junk", 6, data, size);
}

//  Raw TCP bytes that are not ZMTP: random, then a ZMTP-looking greeting
//  announcing an absurd frame.
static void
s_send_raw_tcp (const char *endpoint)
{
    char host[256];
    int port = 0;
    CHECK (sscanf (endpoint, "tcp://%255[^:]:%d", host, &port) == 2,
           "endpoint '%s' is not tcp://host:port", endpoint);
    for (int round = 0; round < 2; round++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        CHECK (fd >= 0, "socket() failed");
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        CHECK (inet_pton (AF_INET, host, &addr.sin_addr) == 1, "bad IPv4 host '%s'", host);
        CHECK (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0,
               "cannot connect to %s over TCP", endpoint);
        uint8_t buf[4096];
        size_t len;
        if (round == 0) {
            s_fill (buf, sizeof buf);
            len = sizeof buf;
        }
        else {
            //  ZMTP 3 signature then a long frame header claiming 2^62 bytes
            static const uint8_t greet[] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0 };
            memcpy (buf, greet, sizeof greet);
            memset (buf + sizeof greet, 0, 52);
            memcpy (buf + 12, "NULL", 4);
            size_t off = 64;
            buf[off++] = 0x06;                          //  long command frame
            memset (buf + off, 0x3f, 8); off += 8;
            s_fill (buf + off, 200); off += 200;
            len = off;
        }
        ssize_t sent = write (fd, buf, len);
        (void) sent;
        close (fd);
    }
}

//  Socket type that can talk to the controller's socket behind `name`.
static int
s_peer_type (const char *kind, const char *name)
{
    if (strcmp (name, "hb_ping") == 0 || strcmp (name, "notification") == 0)
        return ZMQ_XSUB;                //  controller PUB / XPUB: we can only send subscriptions
    if (strcmp (name, "iopub") == 0)
        return strcmp (kind, "engine") == 0 ? ZMQ_XPUB : ZMQ_XSUB;
    return ZMQ_DEALER;                  //  controller ROUTER
}

static json_t *
s_load (const char *dir, const char *file)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/security/%s", dir, file);
    json_error_t jerr;
    json_t *root = json_load_file (path, 0, &jerr);
    CHECK (root, "cannot read %s: %s (line %d)", path, jerr.text, jerr.line);
    CHECK (json_is_object (json_object_get (root, "endpoints")), "%s has no endpoints object", path);
    return root;
}

static int
s_attack_file (void *ctx, json_t *root, const char *kind, int target, const uint8_t *junk)
{
    json_t *endpoints = json_object_get (root, "endpoints");
    const char *name;
    json_t *value;
    int count = 0;
    json_object_foreach (endpoints, name, value) {
        const char *endpoint = json_string_value (value);
        CHECK (endpoint, "%s file: endpoint %s is not a string", kind, name);
        int type = s_peer_type (kind, name);
        void *sock = zmq_socket (ctx, type);
        CHECK (sock, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
        int linger = 20000;
        zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
        int hwm = 0;
        zmq_setsockopt (sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        CHECK (zmq_connect (sock, endpoint) == 0, "zmq_connect %s: %s", endpoint,
               zmq_strerror (zmq_errno ()));
        if (type == ZMQ_XPUB) {
            //  a PUB-side socket only sends to subscribers: wait for the
            //  controller's XSUB to subscribe (it does while a client
            //  listens, and this test's client does)
            zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
            double t0 = lpt_now_ms ();
            bool subscribed = false;
            while (!subscribed && lpt_now_ms () - t0 < 10000) {
                if (zmq_poll (&item, 1, 200) > 0) {
                    char sub[256];
                    if (zmq_recv (sock, sub, sizeof sub, 0) >= 0)
                        subscribed = true;
                }
            }
            if (!subscribed)
                lpt_say ("note: %s %s (%s) never subscribed; junk to it goes nowhere", kind, name, endpoint);
        }
        double t0 = lpt_now_ms ();
        s_send_wrong_signature (sock, target);
        s_send_random_frames (sock);
        s_send_truncated (sock);
        s_send_empty (sock);
        s_send_big (sock, junk);
        zmq_close (sock);
        s_send_raw_tcp (endpoint);
        lpt_say ("junk sent to %s %-13s %s (%.0f ms)", kind, name, endpoint, lpt_now_ms () - t0);
        count++;
    }
    return count;
}

//  True when all 4 engines are registered and answer an execute.
static bool
s_all_answer (lp_client_t *client)
{
    int ids[64];
    if (lp_client_ids (client, ids, 64) != LPT_ENGINES)
        return false;
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = all? lp_view_execute (all, "1"): NULL;
    bool ok = r && lp_result_wait (r, LPT_DEADLINE_MS) == LP_OK && lp_result_failed (r) == 0
           && lp_result_count (r) == LPT_ENGINES;
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    return ok;
}

static void
s_check_serves (lp_client_t *client, const char *when)
{
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n == LPT_ENGINES, "%s: %d engines registered, expected %d", when, n, LPT_ENGINES);
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lpt_exec (all, "(hacked and 'HACKED' or 'clean') .. ':' .. (6 * 7)");
    CHECK (lp_result_count (r) == LPT_ENGINES, "%s: %d replies", when, lp_result_count (r));
    for (int i = 0; i < lp_result_count (r); i++) {
        const lp_value_t *v = lp_result_value (r, i);
        const char *s = v ? lp_value_as_string (v, NULL) : NULL;
        CHECK (s && strcmp (s, "clean:42") == 0, "%s: engine %d answered %s, expected \"clean:42\" "
               "(HACKED means a wrongly signed request was executed)", when,
               lp_result_engine (r, i), lpt_show (v));
    }
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lpt_say ("%s: %d engines answer correctly", when, n);
}

static bool
s_log_mentions_drops (const char *dir)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/log/lpcontroller.log", dir);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets (line, sizeof line, f)) {
        for (char *p = line; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char) (*p - 'A' + 'a');
        if (strstr (line, "drop"))
            found = true;
    }
    fclose (f);
    return found;
}

int
main (int argc, char **argv)
{
    printf ("garbage:\n");
    const char *dir = getenv ("LP_PROFILE_DIR");
    CHECK (dir, "LP_PROFILE_DIR is not set (run through tests/run_with_cluster.sh)");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    CHECK (lp_client_ids (client, ids, 64) >= 1, "no engines");
    s_check_serves (client, "before the junk");

    json_t *engine_file = s_load (dir, "lp-engine.json");
    json_t *client_file = s_load (dir, "lp-client.json");
    uint8_t *junk = malloc (BIG_JUNK_BYTES);
    CHECK (junk, "out of memory");
    s_fill (junk, BIG_JUNK_BYTES);
    void *ctx = zmq_ctx_new ();
    CHECK (ctx, "zmq_ctx_new failed");

    double t0 = lpt_now_ms ();
    int count = s_attack_file (ctx, engine_file, "engine", ids[0], junk);
    count += s_attack_file (ctx, client_file, "client", ids[0], junk);
    CHECK (count >= 9, "only %d endpoints in the two files, expected at least 9", count);
    CHECK (zmq_ctx_term (ctx) == 0, "zmq_ctx_term: %s", zmq_strerror (zmq_errno ()));
    lpt_say ("junk to %d endpoints delivered in %.0f ms", count, lpt_now_ms () - t0);
    free (junk);
    json_decref (engine_file);
    json_decref (client_file);

    //  the controller logs the drops once it has read the junk
    double t1 = lpt_now_ms ();
    while (!s_log_mentions_drops (dir) && lpt_now_ms () - t1 < LPT_DEADLINE_MS)
        lp_client_poll (client, 100);
    CHECK (s_log_mentions_drops (dir), "%s/log/lpcontroller.log does not mention dropped messages "
           "%d ms after the junk", dir, LPT_DEADLINE_MS);
    lpt_say ("controller log mentions dropped messages");

    //  A loaded machine may have made an engine miss heartbeats while the
    //  junk was read; it then registers again by itself. Wait for all 4.
    CHECK (lp_client_wait_for_engines (client, LPT_ENGINES, LPT_DEADLINE_MS) == 0,
           "after the junk, not all engines are registered: %s", lp_client_error (client));
    //  ...and one that was declared dead just now comes back by itself:
    //  the cluster must serve all 4 again within the deadline.
    double t2 = lpt_now_ms ();
    while (!s_all_answer (client) && lpt_now_ms () - t2 < LPT_DEADLINE_MS) {
        lpt_say ("an engine missed heartbeats during the junk; waiting for it to register again");
        lp_client_wait_for_engines (client, LPT_ENGINES, LPT_DEADLINE_MS);
    }
    s_check_serves (client, "after the junk");
    //  and a second round of work with data, through the same client
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_map (all, "function(x) return x + 1 end", lp_value_int_range (1, 100));
    LPT_WAIT_OK (r, "map after junk");
    const lp_value_t *v = lp_result_get (r);
    CHECK (v && lp_value_len (v) == 100 && lp_value_as_int (lp_value_at (v, 99)) == 101,
           "map after junk gave %s", lpt_show (v));
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_client_destroy (&client);

    //  a fresh client can still connect
    client = lpt_connect (argc, argv);
    s_check_serves (client, "new client after the junk");
    lp_client_destroy (&client);
    printf ("garbage: OK\n");
    return 0;
}
