/*  mac_speed.c - how fast libsodium hashes 100 MB on this machine

    The figures behind the wire's choice of MAC (docs/performance.md,
    "Buffers signed by per-buffer digests"): keyed BLAKE2b-256 (the
    signature over the small frames), Poly1305 (the per-buffer tags),
    HMAC-SHA-256 and SipHash for comparison, and a copy into fresh memory.
    Not built by CMake; run it by hand:

        cc -O2 bench/mac_speed.c -lsodium -o /tmp/mac_speed && /tmp/mac_speed
*/
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    size_t n = 100 << 20;
    unsigned char *buffer = malloc (n);
    if (!buffer)
        return 1;
    memset (buffer, 7, n);
    unsigned char key [32] = { 1 }, out [64];
    for (int round = 0; round < 3; round++) {
        double t = s_now ();
        crypto_generichash (out, 32, buffer, n, key, 32);
        double blake = s_now () - t;
        t = s_now ();
        crypto_onetimeauth (out, buffer, n, key);
        double poly = s_now () - t;
        t = s_now ();
        crypto_auth_hmacsha256 (out, buffer, n, key);
        double hmac = s_now () - t;
        t = s_now ();
        crypto_shorthash (out, buffer, n, key);
        double sip = s_now () - t;
        t = s_now ();
        unsigned char *copy = malloc (n);
        if (!copy)
            return 1;
        memcpy (copy, buffer, n);
        double fresh = s_now () - t;
        free (copy);
        printf ("MB/s: blake2b %.0f  poly1305 %.0f  hmac-sha256 %.0f  siphash %.0f"
                "  copy to fresh memory %.0f\n",
                100 / blake, 100 / poly, 100 / hmac, 100 / sip, 100 / fresh);
    }
    free (buffer);
    return 0;
}
