/*  lp_zap.c - a secure cluster's keys and its ZAP handler, see lp_zap.h */
#include "lp_zap.h"
#include "lp_bind.h"
#include <sys/stat.h>

//  Loads <folder>/<name>.key_secret, or makes and saves a new pair.
static zcert_t *
s_cert (const char *folder, const char *name, char *err, size_t errlen)
{
    char path [1200], secret [1300];
    snprintf (path, sizeof path, "%s/%s.key", folder, name);
    snprintf (secret, sizeof secret, "%s_secret", path);
    zcert_t *cert = NULL;
    if (access (secret, F_OK) == 0) {
        cert = zcert_load (path);       //  reads path_secret first
        if (!cert)
            snprintf (err, errlen, "%s: not a CURVE certificate (cluster.sh rekey makes new ones)",
                      secret);
        return cert;
    }
    cert = zcert_new ();
    if (!cert) {
        snprintf (err, errlen, "cannot make a CURVE key pair");
        return NULL;
    }
    zcert_set_meta (cert, "role", "%s", name);
    mode_t old = umask (077);
    int rc = zcert_save (cert, path);
    umask (old);
    if (rc != 0 || chmod (path, 0600) != 0 || chmod (secret, 0600) != 0) {
        snprintf (err, errlen, "cannot write %s: %s", secret, strerror (errno));
        zcert_destroy (&cert);
    }
    return cert;
}

int
lp_keys_load (lp_keys_t *keys, const char *folder, char *err, size_t errlen)
{
    assert (keys);
    memset (keys, 0, sizeof *keys);
    if ((keys->controller = s_cert (folder, "controller", err, errlen))
    &&  (keys->client = s_cert (folder, "client", err, errlen))
    &&  (keys->engine = s_cert (folder, "engine", err, errlen)))
        return 0;
    lp_keys_destroy (keys);
    return -1;
}

void
lp_keys_destroy (lp_keys_t *keys)
{
    if (keys) {
        zcert_destroy (&keys->controller);
        zcert_destroy (&keys->client);
        zcert_destroy (&keys->engine);
    }
}

//  One ZAP request (RFC 27): version, request id, domain, address,
//  identity, mechanism, credentials. Answers 200 for the client's or the
//  engine's public key under our domain, 400 otherwise.
static void
s_answer (zsock_t *handler, lp_keys_t *keys, int64_t *refused)
{
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    const char *user = NULL;
    if (domain && streq (domain, LP_ZAP_DOMAIN)
    &&  mechanism && streq (mechanism, "CURVE")
    &&  credentials && zframe_size (credentials) == 32) {
        if (memcmp (zframe_data (credentials), zcert_public_key (keys->client), 32) == 0)
            user = "client";
        else
        if (memcmp (zframe_data (credentials), zcert_public_key (keys->engine), 32) == 0)
            user = "engine";
        else
        if (memcmp (zframe_data (credentials), zcert_public_key (keys->controller), 32) == 0)
            user = "controller";            //  itself: the task store's resubmissions
    }
    if (!user) {
        //  A stranger may knock often: the first ten refusals, then one in
        //  a thousand, are logged
        (*refused)++;
        if (*refused <= 10 || *refused % 1000 == 0) {
            char key [41] = "?";
            if (credentials && zframe_size (credentials) == 32)
                zmq_z85_encode (key, zframe_data (credentials), 32);
            zsys_warning ("refused a connection from %s: CURVE key %s is not the client's "
                          "or the engine's (%s, domain %s; %" PRId64 " refused so far)",
                          address? address: "?", key, mechanism? mechanism: "?",
                          domain? domain: "?", *refused);
        }
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id? request_id: "");
    zmsg_addstr (reply, user? "200": "400");
    zmsg_addstr (reply, user? "OK": "key not allowed");
    zmsg_addstr (reply, user? user: "");
    zmsg_addmem (reply, NULL, 0);       //  metadata
    zmsg_send (&reply, handler);
    zframe_destroy (&credentials);
    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}

void
lp_zap_actor (zsock_t *pipe, void *args)
{
    lp_keys_t *keys = (lp_keys_t *) args;
    zsock_t *handler = zsock_new_rep ("@inproc://zeromq.zap.01");
    zpoller_t *poller = handler? zpoller_new (pipe, handler, NULL): NULL;
    zsock_signal (pipe, poller? 0: 1);
    int64_t refused = 0;
    while (poller) {
        void *which = zpoller_wait (poller, -1);
        if (which == handler)
            s_answer (handler, keys, &refused);
        else {
            //  $TERM, or interrupted: either way we are done
            if (which == pipe) {
                zmsg_t *command = zmsg_recv (pipe);
                zmsg_destroy (&command);
            }
            break;
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handler);
}

//  --------------------------------------------------------------------------
//  Self-test: keys are made once (0600) and reloaded the same; a CURVE
//  server through lp_bind admits the client's key and refuses another.

//  A DEALER with the key pair mine says hello to server: true when the
//  server hears it; false when the handshake is refused (ZAP 400, seen
//  by a monitor: no waiting for silence). Each wait has a 5 s deadline.
static bool
s_talks (zsock_t *server, zcert_t *server_cert, zcert_t *mine, const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (mine, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (server_cert));
    zsock_set_linger (dealer, 0);
    //  A new name each time: a monitor's inproc endpoint outlives it a while
    static int calls = 0;
    char monitor_ep [64];
    snprintf (monitor_ep, sizeof monitor_ep, "inproc://lp-zap-test-%d", ++calls);
    assert (zmq_socket_monitor (zsock_resolve (dealer), monitor_ep,
                                ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0);
    zsock_t *monitor = zsock_new_pair (monitor_ep);
    assert (monitor);
    assert (zsock_connect (dealer, "%s", endpoint) == 0);
    zstr_send (dealer, "hello");
    zpoller_t *poller = zpoller_new (server, monitor, NULL);
    void *which = zpoller_wait (poller, 5000);
    assert (which);                     //  one or the other, never silence
    zmsg_t *msg = zmsg_recv (which);
    zmsg_destroy (&msg);
    zpoller_destroy (&poller);
    zmq_socket_monitor (zsock_resolve (dealer), NULL, 0);
    zsock_destroy (&monitor);
    zsock_destroy (&dealer);
    return which == server;
}

void
lp_zap_test (bool verbose)
{
    printf (" * zap: ");
    //  @selftest
    char folder [] = "/tmp/lp_zap_test.XXXXXX";
    assert (mkdtemp (folder));
    char err [1400] = "";
    lp_keys_t keys, again;
    assert (lp_keys_load (&keys, folder, err, sizeof err) == 0);
    assert (lp_keys_load (&again, folder, err, sizeof err) == 0);
    assert (streq (zcert_public_txt (keys.client), zcert_public_txt (again.client)));
    assert (streq (zcert_secret_txt (keys.engine), zcert_secret_txt (again.engine)));
    assert (!streq (zcert_public_txt (keys.client), zcert_public_txt (keys.engine)));
    lp_keys_destroy (&again);
    char path [1300];
    struct stat st;
    snprintf (path, sizeof path, "%s/controller.key_secret", folder);
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);

    zactor_t *zap = zactor_new (lp_zap_actor, &keys);
    assert (zap);
    lp_bind_set_curve (keys.controller);
    zsock_t *server = zsock_new (ZMQ_ROUTER);
    char endpoint [128] = "";          //  empty: a free port (lp_bind_tcp)
    assert (lp_bind_tcp (server, "127.0.0.1", endpoint, sizeof endpoint) == 0);
    lp_bind_set_curve (NULL);
    assert (s_talks (server, keys.controller, keys.client, endpoint));
    assert (s_talks (server, keys.controller, keys.engine, endpoint));
    zcert_t *stranger = zcert_new ();
    assert (!s_talks (server, keys.controller, stranger, endpoint));
    zcert_destroy (&stranger);
    zsock_destroy (&server);
    zactor_destroy (&zap);
    lp_keys_destroy (&keys);
    if (verbose)
        printf ("(keys in %s) ", folder);
    const char *names [] = { "controller", "client", "engine" };
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s.key", folder, names [i]);
        unlink (path);
        strcat (path, "_secret");
        unlink (path);
    }
    assert (rmdir (folder) == 0);
    //  @end
    printf ("OK\n");
}
