/*  fuzz_codec.c - libFuzzer target for the value codec (lp_codec_decode)

    Input: frames separated by "#LPF" (lp_fuzz.h); the first is the msgpack
    frame, the others its out-of-band buffers. Whatever decodes must
    encode again (unless nested too deep for the encoder) and decode to an
    equal value: the codec never crashes, leaks or reads out of bounds on
    any input, and what it accepts survives a round trip.
*/
#include "lp_fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zlist_t *frames = lp_fuzz_split (data, size);
    CHECK (frames, "out of memory");
    size_t nframes = zlist_size (frames);
    zframe_t *items [LP_FUZZ_FRAMES];
    size_t n = 0;
    for (zframe_t *f = (zframe_t *) zlist_first (frames); f; f = (zframe_t *) zlist_next (frames))
        items [n++] = f;
    CHECK (n == nframes && n >= 1, "lp_fuzz_split lost frames");
    char err [256] = "";
    lp_value_t *value = lp_codec_decode (zframe_data (items [0]), zframe_size (items [0]),
                                         items + 1, n - 1, err, sizeof (err));
    if (getenv ("LP_FUZZ_VERBOSE"))
        printf ("%s\n", value? lp_type_name (lp_value_type (value)): err);
    if (value) {
        zlist_t *buffers = zlist_new ();
        CHECK (buffers, "out of memory");
        char err2 [256] = "";
        zframe_t *encoded = lp_codec_encode (value, buffers, err2, sizeof (err2));
        if (encoded) {
            zframe_t *pieces [4096];
            size_t npieces = 0;
            for (zframe_t *f = (zframe_t *) zlist_first (buffers); f && npieces < 4096;
                 f = (zframe_t *) zlist_next (buffers))
                pieces [npieces++] = f;
            CHECK (npieces == zlist_size (buffers), "more than 4096 buffers");
            lp_value_t *again = lp_codec_decode (zframe_data (encoded), zframe_size (encoded),
                                                 pieces, npieces, err2, sizeof (err2));
            if (!again)
                fprintf (stderr, "re-decoding failed: %s\n", err2);
            CHECK (again, "an encoded value does not decode");
            CHECK (lp_value_equal (value, again), "the value changed in a round trip");
            lp_value_destroy (&again);
            zframe_destroy (&encoded);
        }
        else
            CHECK (strstr (err2, "deep"),
                   "a decoded value does not encode, and not for depth: %s", err2);
        lp_fuzz_free (&buffers);
        lp_value_destroy (&value);
    }
    else
        CHECK (err [0], "decoding failed without saying why");
    lp_fuzz_free (&frames);
    return 0;
}
