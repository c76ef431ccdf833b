/*  fuzz_wire.c - libFuzzer target for the wire verifier and decoder

    Input: one flag byte, then frames separated by "#LPF" (lp_fuzz.h):
    header, parent, metadata, content, buffers (any number, any bytes).
    The target builds [peer] | <LPMSG> | signature | frames... and signs
    them with a known key, so fuzzing gets past the signature into the
    decoder (the part a holder of the key -- any client -- can reach).
    Flag bits: 1 spoils the signature, 2 leaves out the delimiter, 4 the
    routing frame. Each input meets a fresh wire (its replay guard would
    refuse a msg_id seen before), then goes through every path a receiver
    or forwarder uses: lp_wire_verify, lp_wire_parent,
    lp_wire_decode_frame, lp_wire_replace / lp_wire_resign, lp_wire_decode,
    and what decodes is encoded again.
*/
#include "lp_fuzz.h"

static uint8_t s_key [LP_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static lp_wire_t *s_signer;

//  The message of the input (NULL when out of memory).
static zmsg_t *
s_message (const uint8_t *data, size_t size)
{
    uint8_t flags = size? data [0]: 0;
    zlist_t *frames = lp_fuzz_split (size? data + 1: data, size? size - 1: 0);
    CHECK (frames, "out of memory");
    zmsg_t *zmsg = zmsg_new ();
    CHECK (zmsg, "out of memory");
    if (!(flags & 4))
        CHECK (zmsg_addstr (zmsg, "peer") == 0, "out of memory");
    size_t delim = zmsg_size (zmsg);
    if (!(flags & 2))
        CHECK (zmsg_addstr (zmsg, LP_DELIMITER) == 0, "out of memory");
    CHECK (zmsg_addmem (zmsg, NULL, 0) == 0, "out of memory");          //  signature
    zframe_t *frame = (zframe_t *) zlist_pop (frames);
    while (frame) {
        CHECK (zmsg_append (zmsg, &frame) == 0, "out of memory");
        frame = (zframe_t *) zlist_pop (frames);
    }
    lp_fuzz_free (&frames);
    //  Sign when the message is long enough to have a signature
    if (!(flags & 2) && zmsg_size (zmsg) >= delim + LP_FRAMES_MIN) {
        CHECK (lp_wire_resign (s_signer, zmsg, delim) == 0, "signing failed");
        if (flags & 1) {
            zframe_t *sig = zmsg_first (zmsg);
            for (size_t i = 0; i < delim + LP_FRAME_SIGNATURE; i++)
                sig = zmsg_next (zmsg);
            zframe_data (sig) [0] ^= 1;
        }
    }
    return zmsg;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_signer) {
        zsys_init ();
        zsys_set_logstream (NULL);          //  drops are expected: no log spam
        zsys_set_logsystem (false);
        s_signer = lp_wire_new (s_key, sizeof (s_key), "fuzz/signer");
        CHECK (s_signer, "out of memory");
    }
    zmsg_t *zmsg = s_message (data, size);
    lp_wire_t *wire = lp_wire_new (s_key, sizeof (s_key), "fuzz");
    CHECK (wire, "out of memory");

    //  Forwarder path
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (wire, zmsg, &delim);
    if (header) {
        char err [256];
        lp_value_t *parent = lp_wire_parent (zmsg, delim, err, sizeof (err));
        if (parent) {
            (void) lp_wire_map_string (parent, LP_HDR_MSG_ID);
            zmsg_t *copy = zmsg_dup (zmsg);
            CHECK (copy, "out of memory");
            if (lp_wire_replace (s_signer, copy, delim, LP_FRAME_PARENT, header) == 0)
                CHECK (lp_wire_resign (s_signer, copy, delim) == 0,
                       "signing again after lp_wire_replace failed");
            zmsg_destroy (&copy);
            lp_value_destroy (&parent);
        }
        lp_value_t *meta = lp_wire_decode_frame (zmsg, delim, LP_FRAME_METADATA, err, sizeof (err));
        lp_value_destroy (&meta);
        lp_value_destroy (&header);
        //  The forwarder used the id up: a fresh wire decodes it
        lp_wire_destroy (&wire);
        wire = lp_wire_new (s_key, sizeof (s_key), "fuzz");
        CHECK (wire, "out of memory");
    }
    //  Receiver path, and what decodes is sent again
    lp_msg_t *msg = lp_wire_decode (wire, &zmsg);
    CHECK (zmsg == NULL, "lp_wire_decode did not take the message");
    if (getenv ("LP_FUZZ_VERBOSE"))
        printf ("%s\n", msg? lp_msg_type (msg): lp_wire_last_error (wire));
    if (msg) {
        CHECK (lp_msg_id (msg) && lp_msg_type (msg), "a decoded message without msg_id or msg_type");
        char err [256];
        zmsg_t *again = lp_wire_encode (s_signer, &msg, err, sizeof (err));
        CHECK (msg == NULL, "lp_wire_encode did not take the message");
        if (again) {
            lp_wire_t *fresh = lp_wire_new (s_key, sizeof (s_key), "fuzz");
            CHECK (fresh, "out of memory");
            lp_msg_t *back = lp_wire_decode (fresh, &again);
            if (!back)
                fprintf (stderr, "re-encoded message dropped: %s\n", lp_wire_last_error (fresh));
            CHECK (back, "a message encoded again does not decode");
            lp_msg_destroy (&back);
            lp_wire_destroy (&fresh);
        }
    }
    lp_wire_destroy (&wire);
    return 0;
}
