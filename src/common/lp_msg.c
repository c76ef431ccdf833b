/*  =========================================================================
    lp_msg - one protocol message

    A message is four value maps and a routing envelope:

        routing     zmsg_t of identity frames (what came before <LPMSG>)
        header      {msg_id, msg_type, session, username, date, version, ...}
        parent      the request's header, for replies and stream messages
        metadata    {engine, started, completed, stdout, ...}
        content     the request or reply body

    lp_msg_new fills the header; the session is left "" and stamped by the
    lp_wire that sends the message (a wire belongs to one process, and the
    session names the sending process). lp_msg_new_reply copies the
    request's header into parent and its routing envelope, so a ROUTER
    sends the reply back to whoever asked. Signing and msgpack are not
    here: see lp_wire.
    =========================================================================
*/

#include "lp_msg.h"
#include "lp_proto.h"
#include "lp_util.h"
#include <pwd.h>
#include <pthread.h>
#include <unistd.h>

struct _lp_msg_t {
    lp_value_t *header;             //  map, see above
    lp_value_t *parent;             //  map, empty when none
    lp_value_t *metadata;           //  map, empty when none
    lp_value_t *content;            //  map, empty when none
    zmsg_t *routing;                //  identity frames, may be empty
};

//  ---------------------------------------------------------------------
//  User name of this process: $USER, else the password database, else
//  "unknown". Looked up once (reading /etc/passwd per message would cost
//  more than the rest of the message), under pthread_once.

static char s_user [256];
static pthread_once_t s_user_once = PTHREAD_ONCE_INIT;

static void
s_username_init (void)
{
    const char *user = getenv ("USER");
    if (user && *user) {
        snprintf (s_user, sizeof (s_user), "%s", user);
        return;
    }
    char buffer [1024];
    struct passwd pwd, *result = NULL;
    if (getpwuid_r (getuid (), &pwd, buffer, sizeof (buffer), &result) == 0
    &&  result && result->pw_name)
        snprintf (s_user, sizeof (s_user), "%s", result->pw_name);
    else
        snprintf (s_user, sizeof (s_user), "unknown");
}

static const char *
s_username (void)
{
    pthread_once (&s_user_once, s_username_init);
    return s_user;
}

//  Sets a string field in a map; -1 when out of memory.
static int
s_set_string (lp_value_t *map, const char *key, const char *string)
{
    lp_value_t *item = lp_value_string (string);
    if (!item)
        return -1;
    return lp_value_set (map, key, item);
}

//  An empty message: empty maps, empty routing, no header fields.
static lp_msg_t *
s_msg_new_empty (void)
{
    lp_msg_t *self = (lp_msg_t *) calloc (1, sizeof (lp_msg_t));
    if (!self)
        return NULL;
    self->header = lp_value_map ();
    self->parent = lp_value_map ();
    self->metadata = lp_value_map ();
    self->content = lp_value_map ();
    self->routing = zmsg_new ();
    if (!self->header || !self->parent || !self->metadata || !self->content
    ||  !self->routing)
        lp_msg_destroy (&self);
    return self;
}

//  ---------------------------------------------------------------------
//  Creates a message of the given type with a complete header.

lp_msg_t *
lp_msg_new (const char *msg_type)
{
    assert (msg_type);
    lp_msg_t *self = s_msg_new_empty ();
    if (!self)
        return NULL;
    char msg_id [LP_ID_CHARS + 1];
    lp_util_random_id (msg_id);
    char date [32];
    lp_util_iso_now (date);
    if (s_set_string (self->header, LP_HDR_MSG_ID, msg_id)
    ||  s_set_string (self->header, LP_HDR_MSG_TYPE, msg_type)
    ||  s_set_string (self->header, LP_HDR_SESSION, "")
    ||  s_set_string (self->header, LP_HDR_USERNAME, s_username ())
    ||  s_set_string (self->header, LP_HDR_DATE, date)
    ||  s_set_string (self->header, LP_HDR_VERSION, LP_PROTOCOL_VERSION))
        lp_msg_destroy (&self);
    return self;
}

//  ---------------------------------------------------------------------
//  A message with empty maps and no header fields: lp_wire_decode sets the
//  header it received, so making a fresh id and date would be wasted.

lp_msg_t *
lp_msg_new_empty (void)
{
    return s_msg_new_empty ();
}

//  ---------------------------------------------------------------------
//  Creates a reply: parent = copy of request's header, routing = copy of
//  request's routing envelope.

lp_msg_t *
lp_msg_new_reply (const lp_msg_t *request, const char *msg_type)
{
    assert (request);
    lp_msg_t *self = lp_msg_new (msg_type);
    if (!self)
        return NULL;
    lp_value_t *parent = lp_value_dup (request->header);
    zmsg_t *routing = zmsg_dup (request->routing);
    if (!parent || !routing) {
        lp_value_destroy (&parent);
        zmsg_destroy (&routing);
        lp_msg_destroy (&self);
        return NULL;
    }
    lp_msg_set_parent (self, parent);
    lp_msg_set_routing (self, &routing);
    return self;
}

void
lp_msg_destroy (lp_msg_t **self_p)
{
    assert (self_p);
    lp_msg_t *self = *self_p;
    if (self) {
        lp_value_destroy (&self->header);
        lp_value_destroy (&self->parent);
        lp_value_destroy (&self->metadata);
        lp_value_destroy (&self->content);
        zmsg_destroy (&self->routing);
        free (self);
        *self_p = NULL;
    }
}

//  String field of a map, NULL when absent or not a string.
static const char *
s_get_string (const lp_value_t *map, const char *key)
{
    const lp_value_t *item = lp_value_get (map, key);
    if (!item || lp_value_type (item) != LP_STRING)
        return NULL;
    return lp_value_as_string (item, NULL);
}

const char *
lp_msg_type (const lp_msg_t *self)
{
    assert (self);
    return s_get_string (self->header, LP_HDR_MSG_TYPE);
}

const char *
lp_msg_id (const lp_msg_t *self)
{
    assert (self);
    return s_get_string (self->header, LP_HDR_MSG_ID);
}

const char *
lp_msg_parent_id (const lp_msg_t *self)
{
    assert (self);
    return s_get_string (self->parent, LP_HDR_MSG_ID);
}

lp_value_t *
lp_msg_header (lp_msg_t *self)
{
    assert (self);
    return self->header;
}

lp_value_t *
lp_msg_parent (lp_msg_t *self)
{
    assert (self);
    return self->parent;
}

lp_value_t *
lp_msg_metadata (lp_msg_t *self)
{
    assert (self);
    return self->metadata;
}

lp_value_t *
lp_msg_content (lp_msg_t *self)
{
    assert (self);
    return self->content;
}

//  Replaces *slot with value (taken); NULL means an empty map, so the
//  accessors never return NULL.
static void
s_replace (lp_value_t **slot, lp_value_t *value)
{
    if (!value) {
        value = lp_value_map ();
        if (!value)
            return;                 //  out of memory: keep the old map
    }
    lp_value_destroy (slot);
    *slot = value;
}

void
lp_msg_set_content (lp_msg_t *self, lp_value_t *content)
{
    assert (self);
    s_replace (&self->content, content);
}

void
lp_msg_set_header (lp_msg_t *self, lp_value_t *header)
{
    assert (self);
    s_replace (&self->header, header);
}

void
lp_msg_set_parent (lp_msg_t *self, lp_value_t *parent)
{
    assert (self);
    s_replace (&self->parent, parent);
}

void
lp_msg_set_metadata (lp_msg_t *self, lp_value_t *metadata)
{
    assert (self);
    s_replace (&self->metadata, metadata);
}

zmsg_t *
lp_msg_routing (lp_msg_t *self)
{
    assert (self);
    return self->routing;
}

void
lp_msg_set_routing (lp_msg_t *self, zmsg_t **routing_p)
{
    assert (self);
    assert (routing_p);
    if (*routing_p) {
        zmsg_destroy (&self->routing);
        self->routing = *routing_p;
        *routing_p = NULL;
    }
    else {
        zmsg_t *empty = zmsg_new ();
        if (empty) {
            zmsg_destroy (&self->routing);
            self->routing = empty;
        }
    }
}

const char *
lp_msg_get_string (lp_msg_t *self, const char *key)
{
    assert (self);
    assert (key);
    return s_get_string (self->content, key);
}

//  Integers, and numbers with an integral value that fits (a Lua float
//  such as 2.0 may arrive as a msgpack float).
int64_t
lp_msg_get_int (lp_msg_t *self, const char *key, int64_t fallback)
{
    assert (self);
    assert (key);
    const lp_value_t *item = lp_value_get (self->content, key);
    if (!item)
        return fallback;
    if (lp_value_type (item) == LP_INT)
        return lp_value_as_int (item);
    if (lp_value_type (item) == LP_NUMBER) {
        double d = lp_value_as_number (item);
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double) (int64_t) d)
            return (int64_t) d;
    }
    return fallback;
}

//  ---------------------------------------------------------------------
//  Self-test

void
lp_msg_test (bool verbose)
{
    printf (" * msg: ");
    //  @selftest
    lp_msg_t *request = lp_msg_new (LP_EXECUTE_REQUEST);
    assert (request);
    assert (streq (lp_msg_type (request), LP_EXECUTE_REQUEST));
    const char *msg_id = lp_msg_id (request);
    assert (msg_id && strlen (msg_id) == LP_ID_CHARS);
    lp_value_t *header = lp_msg_header (request);
    assert (lp_value_type (header) == LP_MAP);
    assert (lp_value_len (header) == 6);
    assert (streq (lp_value_as_string (lp_value_get (header, "session"), NULL), ""));
    assert (streq (lp_value_as_string (lp_value_get (header, "version"), NULL), LP_PROTOCOL_VERSION));
    const char *username = lp_value_as_string (lp_value_get (header, "username"), NULL);
    assert (username && *username);
    const char *date = lp_value_as_string (lp_value_get (header, "date"), NULL);
    assert (date && strlen (date) == 27 && date [26] == 'Z' && date [10] == 'T');
    if (verbose)
        printf ("\n    %s by %s at %s\n    ", msg_id, username, date);

    //  Empty maps by default, never NULL
    assert (lp_value_type (lp_msg_parent (request)) == LP_MAP);
    assert (lp_value_len (lp_msg_parent (request)) == 0);
    assert (lp_value_len (lp_msg_metadata (request)) == 0);
    assert (lp_value_len (lp_msg_content (request)) == 0);
    assert (zmsg_size (lp_msg_routing (request)) == 0);
    assert (lp_msg_parent_id (request) == NULL);

    //  Two messages never share an id
    lp_msg_t *other = lp_msg_new (LP_EXECUTE_REQUEST);
    assert (other);
    assert (!streq (lp_msg_id (other), lp_msg_id (request)));
    lp_msg_destroy (&other);
    assert (other == NULL);

    //  Content shorthands
    lp_value_t *content = lp_value_map ();
    assert (content);
    assert (lp_value_set (content, "code", lp_value_string ("return 1 + 1")) == 0);
    assert (lp_value_set (content, "id", lp_value_int (7)) == 0);
    assert (lp_value_set (content, "ratio", lp_value_number (3.0)) == 0);
    assert (lp_value_set (content, "half", lp_value_number (2.5)) == 0);
    assert (lp_value_set (content, "blob", lp_value_bytes ("ab", 2)) == 0);
    lp_msg_set_content (request, content);
    assert (lp_msg_content (request) == content);
    assert (streq (lp_msg_get_string (request, "code"), "return 1 + 1"));
    assert (lp_msg_get_string (request, "id") == NULL);         //  mistyped
    assert (lp_msg_get_string (request, "blob") == NULL);       //  bytes, not text
    assert (lp_msg_get_string (request, "nothing") == NULL);    //  absent
    assert (lp_msg_get_int (request, "id", -1) == 7);
    assert (lp_msg_get_int (request, "ratio", -1) == 3);
    assert (lp_msg_get_int (request, "half", -1) == -1);
    assert (lp_msg_get_int (request, "code", -1) == -1);
    assert (lp_msg_get_int (request, "nothing", 42) == 42);

    //  Setting NULL gives an empty map back
    lp_msg_set_metadata (request, NULL);
    assert (lp_value_len (lp_msg_metadata (request)) == 0);

    //  Routing envelope, then a reply copies it and the header
    zmsg_t *routing = zmsg_new ();
    assert (routing);
    assert (zmsg_addstr (routing, "client-7") == 0);
    lp_msg_set_routing (request, &routing);
    assert (routing == NULL);
    assert (zmsg_size (lp_msg_routing (request)) == 1);

    lp_msg_t *reply = lp_msg_new_reply (request, LP_EXECUTE_REPLY);
    assert (reply);
    assert (streq (lp_msg_type (reply), LP_EXECUTE_REPLY));
    assert (streq (lp_msg_parent_id (reply), lp_msg_id (request)));
    assert (streq (s_get_string (lp_msg_parent (reply), LP_HDR_MSG_TYPE), LP_EXECUTE_REQUEST));
    assert (lp_value_equal (lp_msg_parent (reply), lp_msg_header (request)));
    assert (lp_msg_parent (reply) != lp_msg_header (request));
    assert (!streq (lp_msg_id (reply), lp_msg_id (request)));
    zmsg_t *reply_routing = lp_msg_routing (reply);
    assert (zmsg_size (reply_routing) == 1);
    assert (zframe_streq (zmsg_first (reply_routing), "client-7"));
    assert (zmsg_first (reply_routing) != zmsg_first (lp_msg_routing (request)));

    //  Replacing the header
    lp_value_t *new_header = lp_value_dup (lp_msg_header (request));
    assert (new_header);
    assert (lp_value_set (new_header, "msg_type", lp_value_string (LP_APPLY_REQUEST)) == 0);
    lp_msg_set_header (request, new_header);
    assert (streq (lp_msg_type (request), LP_APPLY_REQUEST));

    //  A NULL routing resets to an empty envelope
    zmsg_t *none = NULL;
    lp_msg_set_routing (reply, &none);
    assert (zmsg_size (lp_msg_routing (reply)) == 0);

    lp_msg_destroy (&reply);
    lp_msg_destroy (&request);
    lp_msg_destroy (&request);          //  idempotent

    lp_msg_t *empty = lp_msg_new_empty ();
    assert (empty);
    assert (lp_value_len (lp_msg_header (empty)) == 0);
    assert (lp_msg_type (empty) == NULL);
    assert (lp_msg_id (empty) == NULL);
    lp_msg_destroy (&empty);
    //  @end
    printf ("OK\n");
}
