/*  =========================================================================
    lp_conn - a connection file

    A connection file tells an engine or a client where the controller's
    sockets are and which key signs the messages:

        { "version": "1.0", "kind": "client", "signature_scheme":
          "blake2b-256", "key": "<64 hex chars>", "location": "127.0.0.1",
          "endpoints": { "registration": "tcp://127.0.0.1:40001", ... } }

    JSON is read and written by jansson. The key is kept in memory as bytes
    (wiped on destroy) and written as lowercase hex. Loading checks every
    field and reports the first problem as one line "<path>: <problem>", so
    a user who edits a file by hand is told exactly what is wrong. Saving
    writes a temporary file in the same folder (mode 0600 from mkstemp) and
    renames it over the target, so a reader never sees half a file.
    =========================================================================
*/

#include "lp_conn.h"
#include <jansson.h>
#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

struct _lp_conn_t {
    char *kind;                     //  "engine" or "client"
    char *location;                 //  address the file was written for
    uint8_t key [LP_KEY_BYTES];     //  signing key, raw bytes
    size_t key_len;                 //  bytes used in key
    json_t *endpoints;              //  object: channel name -> endpoint
    //  CURVE keys, Z85 + NUL; empty strings for an insecure cluster
    char server_key [41];           //  the controller's public key
    char public_key [41];           //  this role's key pair
    char secret_key [41];
};

//  ---------------------------------------------------------------------
//  Creates an empty connection of the given kind with a fresh random key
//  (so that a forgotten lp_conn_set_key never yields a guessable key) and
//  location 127.0.0.1.

lp_conn_t *
lp_conn_new (const char *kind)
{
    assert (kind);
    if (sodium_init () < 0)
        return NULL;
    lp_conn_t *self = (lp_conn_t *) calloc (1, sizeof (lp_conn_t));
    if (!self)
        return NULL;
    self->kind = strdup (kind);
    self->location = strdup ("127.0.0.1");
    self->endpoints = json_object ();
    if (!self->kind || !self->location || !self->endpoints) {
        lp_conn_destroy (&self);
        return NULL;
    }
    randombytes_buf (self->key, sizeof (self->key));
    self->key_len = sizeof (self->key);
    return self;
}

void
lp_conn_destroy (lp_conn_t **self_p)
{
    assert (self_p);
    lp_conn_t *self = *self_p;
    if (self) {
        sodium_memzero (self->key, sizeof (self->key));
        sodium_memzero (self->secret_key, sizeof (self->secret_key));
        free (self->kind);
        free (self->location);
        json_decref (self->endpoints);
        free (self);
        *self_p = NULL;
    }
}

//  ---------------------------------------------------------------------
//  True when s is "tcp://host:port" with a non-empty host (IPv6 hosts in
//  brackets are fine) and a decimal port 1..65535.

static bool
s_endpoint_valid (const char *s)
{
    const char *prefix = "tcp://";
    if (strncmp (s, prefix, strlen (prefix)) != 0)
        return false;
    const char *host = s + strlen (prefix);
    const char *colon = strrchr (host, ':');
    if (!colon || colon == host)
        return false;
    const char *port = colon + 1;
    size_t digits = strlen (port);
    if (digits == 0 || digits > 5)
        return false;
    long value = 0;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        value = value * 10 + (*p - '0');
    }
    return value >= 1 && value <= 65535;
}

//  Fills err with "<path>: <problem>" and returns NULL (for one-line returns).
static lp_conn_t *
s_fail (lp_conn_t **self_p, char *err, size_t errlen, const char *path,
        const char *format, ...)
{
    char problem [256];
    va_list args;
    va_start (args, format);
    vsnprintf (problem, sizeof (problem), format, args);
    va_end (args);
    if (err && errlen)
        snprintf (err, errlen, "%s: %s", path, problem);
    if (self_p)
        lp_conn_destroy (self_p);
    return NULL;
}

//  True when s is a CURVE key in Z85: 40 characters that decode to 32 bytes.
static bool
s_z85_key_valid (const char *s)
{
    uint8_t bin [32];
    bool valid = s && strlen (s) == 40 && zmq_z85_decode (bin, s) != NULL;
    sodium_memzero (bin, sizeof (bin));
    return valid;
}

//  ---------------------------------------------------------------------
//  Loads and checks a connection file.

lp_conn_t *
lp_conn_load (const char *path, char *err, size_t errlen)
{
    assert (path);
    FILE *file = fopen (path, "r");
    if (!file) {
        int error = errno;
        if (error == ENOENT)
            return s_fail (NULL, err, errlen, path, "no such file");
        if (error == EACCES)
            return s_fail (NULL, err, errlen, path, "permission denied");
        return s_fail (NULL, err, errlen, path, "cannot open: %s", strerror (error));
    }
    struct stat st;
    if (fstat (fileno (file), &st) == 0 && S_ISDIR (st.st_mode)) {
        fclose (file);
        return s_fail (NULL, err, errlen, path, "is a folder, not a file");
    }
    json_error_t jerror;
    errno = 0;
    json_t *root = json_loadf (file, 0, &jerror);
    int read_error = ferror (file)? errno: 0;
    fclose (file);
    if (!root) {
        if (read_error)
            return s_fail (NULL, err, errlen, path, "cannot read: %s", strerror (read_error));
        return s_fail (NULL, err, errlen, path, "not JSON: line %d column %d: %s",
                       jerror.line, jerror.column, jerror.text);
    }
    lp_conn_t *self = NULL;
    const char *problem = NULL;
    char detail [200];

    if (!json_is_object (root)) {
        problem = "not a JSON object";
        goto failed;
    }
    json_t *version = json_object_get (root, "version");
    if (!json_is_string (version)) {
        problem = "missing \"version\" (expected \"" LP_PROTOCOL_VERSION "\")";
        goto failed;
    }
    if (strcmp (json_string_value (version), LP_PROTOCOL_VERSION) != 0) {
        snprintf (detail, sizeof (detail),
                  "unsupported version \"%.40s\" (expected \"" LP_PROTOCOL_VERSION "\")",
                  json_string_value (version));
        problem = detail;
        goto failed;
    }
    json_t *kind = json_object_get (root, "kind");
    if (!json_is_string (kind)
    || (strcmp (json_string_value (kind), "engine") != 0
    &&  strcmp (json_string_value (kind), "client") != 0)) {
        problem = "\"kind\" must be \"engine\" or \"client\"";
        goto failed;
    }
    json_t *scheme = json_object_get (root, "signature_scheme");
    if (scheme && (!json_is_string (scheme)
    ||  strcmp (json_string_value (scheme), LP_SIGNATURE_SCHEME) != 0)) {
        problem = "unsupported \"signature_scheme\" (expected \"" LP_SIGNATURE_SCHEME "\")";
        goto failed;
    }
    json_t *key = json_object_get (root, "key");
    if (!key) {
        problem = "missing \"key\"";
        goto failed;
    }
    json_t *location = json_object_get (root, "location");
    if (location && !json_is_string (location)) {
        problem = "\"location\" is not a string";
        goto failed;
    }
    json_t *endpoints = json_object_get (root, "endpoints");
    if (!json_is_object (endpoints)) {
        problem = "missing \"endpoints\" object";
        goto failed;
    }
    const char *name;
    json_t *value;
    json_object_foreach (endpoints, name, value) {
        if (!json_is_string (value) || !s_endpoint_valid (json_string_value (value))) {
            snprintf (detail, sizeof (detail),
                      "endpoint \"%.60s\" is not a \"tcp://host:port\" string", name);
            problem = detail;
            goto failed;
        }
    }
    json_t *curve = json_object_get (root, "curve");
    if (curve) {
        static const char *names [] = { "server_key", "public_key", "secret_key" };
        for (int i = 0; i < 3 && !problem; i++) {
            json_t *field = json_is_object (curve)? json_object_get (curve, names [i]): NULL;
            if (!json_is_string (field) || !s_z85_key_valid (json_string_value (field))) {
                snprintf (detail, sizeof (detail),
                          "\"curve\" needs \"%s\": a CURVE key of 40 Z85 characters",
                          names [i]);
                problem = detail;
            }
        }
        if (problem)
            goto failed;
    }
    self = lp_conn_new (json_string_value (kind));
    if (!self) {
        problem = "out of memory";
        goto failed;
    }
    //  Key: exactly LP_KEY_BYTES bytes of hex
    const char *hex = json_is_string (key)? json_string_value (key): "";
    size_t bin_len = 0;
    const char *hex_end = NULL;
    if (!json_is_string (key)
    ||  strlen (hex) != 2 * LP_KEY_BYTES
    ||  sodium_hex2bin (self->key, sizeof (self->key), hex, strlen (hex),
                        NULL, &bin_len, &hex_end) != 0
    ||  bin_len != LP_KEY_BYTES || *hex_end) {
        snprintf (detail, sizeof (detail),
                  "\"key\" must be %d hex characters (%d bytes)",
                  2 * LP_KEY_BYTES, LP_KEY_BYTES);
        problem = detail;
        goto failed;
    }
    self->key_len = LP_KEY_BYTES;
    if (curve)
        lp_conn_set_curve (self,
            json_string_value (json_object_get (curve, "server_key")),
            json_string_value (json_object_get (curve, "public_key")),
            json_string_value (json_object_get (curve, "secret_key")));
    if (location)
        lp_conn_set_location (self, json_string_value (location));
    json_decref (self->endpoints);
    self->endpoints = json_deep_copy (endpoints);
    if (!self->endpoints || !self->location) {
        problem = "out of memory";
        goto failed;
    }
    json_decref (root);
    return self;

failed:
    json_decref (root);
    return s_fail (&self, err, errlen, path, "%s", problem);
}

//  ---------------------------------------------------------------------
//  Writes the file atomically: mkstemp in the target's folder (0600),
//  write, fsync, rename.

int
lp_conn_save (lp_conn_t *self, const char *path, char *err, size_t errlen)
{
    assert (self);
    assert (path);
    char hex [2 * LP_KEY_BYTES + 1];
    sodium_bin2hex (hex, sizeof (hex), self->key, self->key_len);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O}",
                              "version", LP_PROTOCOL_VERSION,
                              "kind", self->kind,
                              "signature_scheme", LP_SIGNATURE_SCHEME,
                              "key", hex,
                              "location", self->location,
                              "endpoints", self->endpoints);
    sodium_memzero (hex, sizeof (hex));
    if (root && lp_conn_secure (self)
    &&  json_object_set_new (root, "curve",
            json_pack ("{s:s, s:s, s:s}", "server_key", self->server_key,
                       "public_key", self->public_key,
                       "secret_key", self->secret_key)) != 0) {
        json_decref (root);
        root = NULL;
    }
    if (!root) {
        s_fail (NULL, err, errlen, path, "out of memory");
        return -1;
    }
    size_t tmp_size = strlen (path) + 16;
    char *tmp = (char *) malloc (tmp_size);
    if (!tmp) {
        json_decref (root);
        s_fail (NULL, err, errlen, path, "out of memory");
        return -1;
    }
    snprintf (tmp, tmp_size, "%s.tmpXXXXXX", path);
    int fd = mkstemp (tmp);
    if (fd == -1) {
        s_fail (NULL, err, errlen, path, "cannot create: %s", strerror (errno));
        json_decref (root);
        free (tmp);
        return -1;
    }
    int rc = fchmod (fd, S_IRUSR | S_IWUSR);
    if (rc == 0)
        rc = json_dumpfd (root, fd, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    if (rc == 0)
        rc = write (fd, "\n", 1) == 1? 0: -1;
    if (rc == 0)
        rc = fsync (fd);
    int error = errno;
    if (close (fd) != 0 && rc == 0) {
        rc = -1;
        error = errno;
    }
    if (rc == 0 && rename (tmp, path) != 0) {
        rc = -1;
        error = errno;
    }
    if (rc != 0) {
        unlink (tmp);
        s_fail (NULL, err, errlen, path, "cannot write: %s", strerror (error));
    }
    json_decref (root);
    free (tmp);
    return rc;
}

const char *
lp_conn_kind (lp_conn_t *self)
{
    assert (self);
    return self->kind;
}

const char *
lp_conn_endpoint (lp_conn_t *self, const char *channel)
{
    assert (self);
    assert (channel);
    return json_string_value (json_object_get (self->endpoints, channel));
}

void
lp_conn_set_endpoint (lp_conn_t *self, const char *channel, const char *endpoint)
{
    assert (self);
    assert (channel);
    assert (endpoint);
    json_object_set_new (self->endpoints, channel, json_string (endpoint));
}

const uint8_t *
lp_conn_key (lp_conn_t *self, size_t *len_p)
{
    assert (self);
    if (len_p)
        *len_p = self->key_len;
    return self->key;
}

void
lp_conn_set_key (lp_conn_t *self, const uint8_t *key, size_t len)
{
    assert (self);
    assert (key);
    assert (len <= sizeof (self->key));
    memcpy (self->key, key, len);
    self->key_len = len;
}

const char *
lp_conn_location (lp_conn_t *self)
{
    assert (self);
    return self->location;
}

void
lp_conn_set_location (lp_conn_t *self, const char *location)
{
    assert (self);
    assert (location);
    char *copy = strdup (location);
    if (copy) {
        free (self->location);
        self->location = copy;
    }
}

bool
lp_conn_secure (lp_conn_t *self)
{
    assert (self);
    return *self->server_key != 0;
}

void
lp_conn_set_curve (lp_conn_t *self, const char *server_key,
                   const char *public_key, const char *secret_key)
{
    assert (self);
    assert (server_key && public_key && secret_key);
    snprintf (self->server_key, sizeof (self->server_key), "%s", server_key);
    snprintf (self->public_key, sizeof (self->public_key), "%s", public_key);
    snprintf (self->secret_key, sizeof (self->secret_key), "%s", secret_key);
}

void
lp_conn_apply_curve (lp_conn_t *self, zsock_t *sock)
{
    assert (self);
    assert (sock);
    if (!lp_conn_secure (self))
        return;
    zsock_set_curve_serverkey (sock, self->server_key);
    zsock_set_curve_publickey (sock, self->public_key);
    zsock_set_curve_secretkey (sock, self->secret_key);
}

//  ---------------------------------------------------------------------
//  Self-test helpers: write text to a file; load it and check that the
//  error mentions path and the expected problem.

static void
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fputs (text, file) >= 0);
    assert (fclose (file) == 0);
}

static void
s_expect_error (const char *path, const char *text, const char *problem, bool verbose)
{
    if (text)
        s_write_file (path, text);
    char err [512] = "";
    lp_conn_t *conn = lp_conn_load (path, err, sizeof (err));
    if (verbose)
        printf ("\n    %s", err);
    assert (conn == NULL);
    assert (strncmp (err, path, strlen (path)) == 0);
    assert (strncmp (err + strlen (path), ": ", 2) == 0);
    assert (strstr (err, problem));
    assert (!strchr (err, '\n'));
}

void
lp_conn_test (bool verbose)
{
    printf (" * conn: ");
    //  @selftest
    char folder [] = "/tmp/lp_conn_test.XXXXXX";
    assert (mkdtemp (folder));
    char path [256];
    snprintf (path, sizeof (path), "%s/lp-client.json", folder);

    //  Round trip
    lp_conn_t *conn = lp_conn_new ("client");
    assert (conn);
    assert (streq (lp_conn_kind (conn), "client"));
    uint8_t key [LP_KEY_BYTES];
    for (size_t i = 0; i < sizeof (key); i++)
        key [i] = (uint8_t) (i * 7 + 0xA0);
    lp_conn_set_key (conn, key, sizeof (key));
    lp_conn_set_location (conn, "10.0.0.1");
    lp_conn_set_endpoint (conn, "registration", "tcp://127.0.0.1:40001");
    lp_conn_set_endpoint (conn, "mux", "tcp://127.0.0.1:40002");
    lp_conn_set_endpoint (conn, "mux", "tcp://127.0.0.1:40003");   //  replaces
    assert (streq (lp_conn_endpoint (conn, "mux"), "tcp://127.0.0.1:40003"));
    assert (lp_conn_endpoint (conn, "iopub") == NULL);
    char err [512] = "";
    assert (lp_conn_save (conn, path, err, sizeof (err)) == 0);
    lp_conn_destroy (&conn);
    assert (conn == NULL);

    struct stat st;
    assert (stat (path, &st) == 0);
    assert ((st.st_mode & 0777) == 0600);
    //  Only the target is in the folder: no temporary left behind
    zdir_t *dir = zdir_new (folder, NULL);
    assert (dir);
    assert (zdir_count (dir) == 1);
    zdir_destroy (&dir);
    //  Key is written as lowercase hex
    FILE *file = fopen (path, "r");
    assert (file);
    char text [2048];
    size_t text_len = fread (text, 1, sizeof (text) - 1, file);
    text [text_len] = 0;
    fclose (file);
    assert (strstr (text, "\"key\": \"a0a7aeb5"));
    assert (strstr (text, "\"signature_scheme\": \"blake2b-256\""));

    conn = lp_conn_load (path, err, sizeof (err));
    assert (conn);
    size_t key_len = 0;
    assert (memcmp (lp_conn_key (conn, &key_len), key, sizeof (key)) == 0);
    assert (key_len == LP_KEY_BYTES);
    assert (streq (lp_conn_kind (conn), "client"));
    assert (streq (lp_conn_location (conn), "10.0.0.1"));
    assert (streq (lp_conn_endpoint (conn, "registration"), "tcp://127.0.0.1:40001"));
    assert (streq (lp_conn_endpoint (conn, "mux"), "tcp://127.0.0.1:40003"));
    //  Saving over an existing file replaces it
    lp_conn_set_endpoint (conn, "iopub", "tcp://[::1]:40004");
    assert (lp_conn_save (conn, path, err, sizeof (err)) == 0);
    lp_conn_destroy (&conn);
    conn = lp_conn_load (path, err, sizeof (err));
    assert (conn);
    assert (streq (lp_conn_endpoint (conn, "iopub"), "tcp://[::1]:40004"));
    lp_conn_destroy (&conn);

    //  CURVE keys round trip; a bad one is refused
    conn = lp_conn_new ("engine");
    assert (conn && !lp_conn_secure (conn));
    zcert_t *server = zcert_new ();
    zcert_t *mine = zcert_new ();
    lp_conn_set_curve (conn, zcert_public_txt (server), zcert_public_txt (mine),
                       zcert_secret_txt (mine));
    lp_conn_set_endpoint (conn, "mux", "tcp://127.0.0.1:40003");
    assert (lp_conn_save (conn, path, err, sizeof (err)) == 0);
    lp_conn_destroy (&conn);
    conn = lp_conn_load (path, err, sizeof (err));
    assert (conn && lp_conn_secure (conn));
    zsock_t *probe = zsock_new (ZMQ_DEALER);
    lp_conn_apply_curve (conn, probe);
    char *serverkey = zsock_curve_serverkey (probe);
    assert (streq (serverkey, zcert_public_txt (server)));
    zstr_free (&serverkey);
    zsock_destroy (&probe);
    lp_conn_destroy (&conn);
    zcert_destroy (&server);
    zcert_destroy (&mine);

    //  Two fresh connections get different random keys
    lp_conn_t *a = lp_conn_new ("engine");
    lp_conn_t *b = lp_conn_new ("engine");
    assert (a && b);
    assert (memcmp (lp_conn_key (a, NULL), lp_conn_key (b, NULL), LP_KEY_BYTES) != 0);
    lp_conn_destroy (&a);
    lp_conn_destroy (&b);

    //  Error cases, each one line "<path>: <problem>"
    char bad [256];
    snprintf (bad, sizeof (bad), "%s/bad.json", folder);
    char missing [256];
    snprintf (missing, sizeof (missing), "%s/missing.json", folder);
    s_expect_error (missing, NULL, "no such file", verbose);

    s_write_file (bad, "{}");
    assert (chmod (bad, 0) == 0);
    if (geteuid () != 0)            //  root reads anything
        s_expect_error (bad, NULL, "permission denied", verbose);
    assert (chmod (bad, 0600) == 0);

    s_expect_error (folder, NULL, "is a folder", verbose);     //  a folder
    s_expect_error (bad, "{\"version\": \"1.0\",\n  \"kind\": }", "not JSON: line 2", verbose);
    s_expect_error (bad, "", "not JSON", verbose);
    s_expect_error (bad, "[1, 2]", "not a JSON object", verbose);

#define GOOD_KEY "\"key\": \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\""
#define GOOD_EP  "\"endpoints\": {\"mux\": \"tcp://127.0.0.1:5555\"}"
    //  Sanity: the good pieces load
    s_write_file (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_KEY ", " GOOD_EP "}");
    conn = lp_conn_load (bad, err, sizeof (err));
    assert (conn);
    assert (streq (lp_conn_kind (conn), "engine"));
    assert (lp_conn_key (conn, NULL) [31] == 0x1f);
    lp_conn_destroy (&conn);

    s_expect_error (bad, "{\"kind\": \"engine\", " GOOD_KEY ", " GOOD_EP "}",
                    "missing \"version\"", verbose);
    s_expect_error (bad, "{\"version\": \"2.0\", \"kind\": \"engine\", " GOOD_KEY ", " GOOD_EP "}",
                    "unsupported version \"2.0\"", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"hub\", " GOOD_KEY ", " GOOD_EP "}",
                    "\"kind\" must be", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", "
                    "\"signature_scheme\": \"hmac-md5\", " GOOD_KEY ", " GOOD_EP "}",
                    "signature_scheme", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_EP "}",
                    "missing \"key\"", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", \"key\": \"00ff\", " GOOD_EP "}",
                    "\"key\" must be 64 hex characters", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", \"key\": "
                    "\"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\", " GOOD_EP "}",
                    "\"key\" must be 64 hex characters", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", \"key\": 42, " GOOD_EP "}",
                    "\"key\" must be", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_KEY "}",
                    "missing \"endpoints\" object", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_KEY ", \"endpoints\": [1]}",
                    "missing \"endpoints\" object", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_KEY ", "
                    "\"endpoints\": {\"mux\": 5555}}",
                    "endpoint \"mux\" is not a \"tcp://host:port\" string", verbose);
    const char *bad_endpoints [] = {
        "ipc:///tmp/x", "tcp://127.0.0.1", "tcp://:5555", "tcp://host:0",
        "tcp://host:65536", "tcp://host:55x5", "tcp://host:", NULL
    };
    for (int i = 0; bad_endpoints [i]; i++) {
        char json [512];
        snprintf (json, sizeof (json), "{\"version\": \"1.0\", \"kind\": \"client\", "
                  GOOD_KEY ", \"endpoints\": {\"registration\": \"tcp://127.0.0.1:1\", "
                  "\"control\": \"%s\"}}", bad_endpoints [i]);
        s_expect_error (bad, json, "endpoint \"control\" is not", verbose);
    }
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", " GOOD_KEY ", " GOOD_EP
                    ", \"curve\": {\"server_key\": \"short\"}}", "\"curve\" needs \"server_key\"", verbose);
    s_expect_error (bad, "{\"version\": \"1.0\", \"kind\": \"engine\", \"location\": 7, "
                    GOOD_KEY ", " GOOD_EP "}", "\"location\" is not a string", verbose);
#undef GOOD_KEY
#undef GOOD_EP

    //  Saving into a folder that does not exist fails with the reason
    char nowhere [300];
    snprintf (nowhere, sizeof (nowhere), "%s/no/such/lp.json", folder);
    conn = lp_conn_new ("engine");
    assert (conn);
    assert (lp_conn_save (conn, nowhere, err, sizeof (err)) == -1);
    assert (strstr (err, nowhere) == err);
    lp_conn_destroy (&conn);

    assert (unlink (bad) == 0);
    assert (unlink (path) == 0);
    assert (rmdir (folder) == 0);
    //  @end
    printf ("%sOK\n", verbose? "\n": "");
}
