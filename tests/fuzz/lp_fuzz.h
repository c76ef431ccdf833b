/*  lp_fuzz.h - shared by the fuzz targets (tests/fuzz/README.md)

    A fuzz input holds several frames separated by LP_FUZZ_SEP ("#LPF"),
    so that libFuzzer's mutations (guided by the .dict files) can add,
    split and join frames. lp_fuzz_split returns them as a zlist of
    zframe_t (caller destroys).
*/
#ifndef LP_FUZZ_H_INCLUDED
#define LP_FUZZ_H_INCLUDED

#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_value.h"
#include "lp_wire.h"
//  CHECK aborts in a fuzz target: libFuzzer records a crash and its input
#define LP_CHECK_ABORT
#include "lp_check.h"

#define LP_FUZZ_SEP      "#LPF"
#define LP_FUZZ_SEP_LEN  4
#define LP_FUZZ_FRAMES   64             //  at most this many frames

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Splits data at each separator; at most LP_FUZZ_FRAMES frames (the last
//  one keeps the rest). Returns NULL when out of memory.
static inline zlist_t *
lp_fuzz_split (const uint8_t *data, size_t size)
{
    zlist_t *frames = zlist_new ();
    if (!frames)
        return NULL;
    size_t start = 0;
    for (size_t i = 0; ; ) {
        bool at_sep = i + LP_FUZZ_SEP_LEN <= size
                   && memcmp (data + i, LP_FUZZ_SEP, LP_FUZZ_SEP_LEN) == 0
                   && zlist_size (frames) + 1 < LP_FUZZ_FRAMES;
        if (at_sep || i >= size) {
            zframe_t *frame = zframe_new (data + start, (at_sep? i: size) - start);
            CHECK (frame, "out of memory");
            zlist_append (frames, frame);
            if (!at_sep)
                break;
            i += LP_FUZZ_SEP_LEN;
            start = i;
        }
        else
            i++;
    }
    return frames;
}

static inline void
lp_fuzz_free (zlist_t **frames_p)
{
    zlist_t *frames = *frames_p;
    if (frames) {
        zframe_t *frame = (zframe_t *) zlist_pop (frames);
        while (frame) {
            zframe_destroy (&frame);
            frame = (zframe_t *) zlist_pop (frames);
        }
        zlist_destroy (frames_p);
    }
}

#endif
