/*  =========================================================================
    lp_util - small helpers shared by every process: random ids, UTF-8
    validation, wall clock in ISO 8601, profile folders, hex encoding

    Random ids come from libsodium's randombytes_buf; sodium_init runs once
    per process through pthread_once, so any thread may ask for an id first.
    Every message needs an id, so each thread draws random bytes 4 KB at a
    time (one system call per 256 ids); a fork bumps a generation counter
    so a child never reuses its parent's buffered bytes.
    =========================================================================
*/

#include "lp_util.h"
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>
#include <sodium.h>
#include <pthread.h>
#include <pwd.h>
#include <time.h>
#include <ctype.h>
#include <sys/mman.h>

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;
static volatile unsigned s_fork_generation = 1;     //  bumped in fork children

static _Thread_local uint8_t s_pool [LP_RANDOM_POOL_BYTES];
static _Thread_local size_t s_pool_used = LP_RANDOM_POOL_BYTES;
static _Thread_local unsigned s_pool_generation;

static void
s_after_fork_in_child (void)
{
    s_fork_generation++;
}

static void
s_sodium_init (void)
{
    //  Returns 1 when already initialised, -1 only when the platform has
    //  no usable random source: nothing can work then.
    int rc = sodium_init ();
    assert (rc >= 0);
    pthread_atfork (NULL, NULL, s_after_fork_in_child);
}

//  ---------------------------------------------------------------------
//  32 random lowercase hex chars plus NUL

//  ---------------------------------------------------------------------
//  Asks for transparent huge pages over the whole 2 MiB-aligned part of a
//  block about to be filled: a 100 MB value then takes ~50 page faults
//  instead of ~25,600 (faults and their memcg accounting were half of a
//  receiver's system time). Advice only: ignored where THP is off.

void
lp_util_advise_huge (void *ptr, size_t size)
{
    const uintptr_t huge = 2 * 1024 * 1024;
    if (!ptr || size < LP_HUGE_ADVISE_BYTES)
        return;
    uintptr_t start = ((uintptr_t) ptr + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t) ptr + size) & ~(huge - 1);
    if (end > start)
        madvise ((void *) start, end - start, MADV_HUGEPAGE);
}

//  ---------------------------------------------------------------------
//  True when s (len bytes) is a Lua name that is not a keyword, so that a
//  table key can be printed as `name = ...` rather than `["name"] = ...`.

bool
lp_util_lua_name (const char *s, size_t len)
{
    static const char *keywords [] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for",
        "function", "goto", "if", "in", "local", "nil", "not", "or",
        "repeat", "return", "then", "true", "until", "while", NULL
    };
    if (len == 0 || !(isalpha ((unsigned char) s [0]) || s [0] == '_'))
        return false;
    for (size_t k = 1; k < len; k++)
        if (!(isalnum ((unsigned char) s [k]) || s [k] == '_'))
            return false;
    for (int k = 0; keywords [k]; k++)
        if (strlen (keywords [k]) == len && memcmp (s, keywords [k], len) == 0)
            return false;
    return true;
}

void
lp_util_random_id (char out [LP_ID_CHARS + 1])
{
    assert (out);
    pthread_once (&s_sodium_once, s_sodium_init);
    size_t need = LP_ID_CHARS / 2;
    if (s_pool_used + need > LP_RANDOM_POOL_BYTES || s_pool_generation != s_fork_generation) {
        randombytes_buf (s_pool, LP_RANDOM_POOL_BYTES);
        s_pool_used = 0;
        s_pool_generation = s_fork_generation;
    }
    lp_util_hex_encode (s_pool + s_pool_used, need, out);
    //  Used bytes are wiped: an id never leaks what the next one will be.
    sodium_memzero (s_pool + s_pool_used, need);
    s_pool_used += need;
}

//  ---------------------------------------------------------------------
//  Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF

bool
lp_util_utf8_valid (const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t k = 0;
    while (k < len) {
        unsigned char c = p [k];
        if (c < 0x80) {
            //  ASCII runs 16 bytes at a time (a 100 MB text is mostly
            //  this loop: about 8x faster than byte by byte)
            k++;
            while (len - k >= 16) {
                uint64_t a, b;
                memcpy (&a, p + k, 8);
                memcpy (&b, p + k + 8, 8);
                if ((a | b) & UINT64_C (0x8080808080808080))
                    break;
                k += 16;
            }
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1; cp = c & 0x1F; min = 0x80;
        }
        else
        if (c >= 0xE0 && c <= 0xEF) {
            need = 2; cp = c & 0x0F; min = 0x800;
        }
        else
        if (c >= 0xF0 && c <= 0xF4) {
            need = 3; cp = c & 0x07; min = 0x10000;
        }
        else
            return false;
        if (len - k - 1 < need)
            return false;
        for (size_t n = 1; n <= need; n++) {
            unsigned char cc = p [k + n];
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        k += need + 1;
    }
    return true;
}

//  ---------------------------------------------------------------------
//  Clocks

int64_t
lp_util_wall_usec (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
lp_util_iso_now (char out [32])
{
    assert (out);
    int64_t usec = lp_util_wall_usec ();
    time_t secs = (time_t) (usec / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + n, 32 - n, ".%06dZ", (int) (usec % 1000000));
}

//  Parses "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+00:00)" (UTC only) into
//  microseconds since the epoch. 0, or -1 when s is not such a date.
static int
s_digits (const char **p, int n, int *out)
{
    int value = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        value = value * 10 + (**p - '0');
    }
    *out = value;
    return 0;
}

int
lp_util_iso_parse (const char *s, int64_t *usec_p)
{
    if (!s || !usec_p)
        return -1;
    int year, mon, day, hour, min, sec;
    const char *p = s;
    if (s_digits (&p, 4, &year) || *p++ != '-'
    ||  s_digits (&p, 2, &mon) || *p++ != '-'
    ||  s_digits (&p, 2, &day) || (*p != 'T' && *p != ' ') || !*p++
    ||  s_digits (&p, 2, &hour) || *p++ != ':'
    ||  s_digits (&p, 2, &min) || *p++ != ':'
    ||  s_digits (&p, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -1;
    int64_t usec = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 6)
                usec = usec * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return -1;
        for (int i = digits; i < 6; i++)
            usec *= 10;
    }
    if (!(streq (p, "Z") || streq (p, "+00:00")))
        return -1;
    //  Days from the civil date (proleptic Gregorian), no timegm needed
    int y = year - (mon <= 2);
    int era = (y >= 0? y: y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (mon + (mon > 2? -3: 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t) era * 146097 + doe - 719468;
    *usec_p = ((days * 24 + hour) * 60 + min) * (int64_t) 60000000
            + (int64_t) sec * 1000000 + usec;
    return 0;
}

//  ---------------------------------------------------------------------
//  Profile folder

int
lp_util_profile_dir (const char *profile, char *out, size_t size)
{
    assert (out);
    if (!profile || !*profile)
        profile = "default";
    const char *lp_home = getenv ("LP_HOME");
    int n;
    if (lp_home && *lp_home)
        n = snprintf (out, size, "%s/profile_%s", lp_home, profile);
    else {
        const char *home = getenv ("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid (getuid ());
            home = pw && pw->pw_dir? pw->pw_dir: "/tmp";
        }
        n = snprintf (out, size, "%s/.luaparallel/profile_%s", home, profile);
    }
    if (n < 0 || (size_t) n >= size)
        return -1;
    return 0;
}

//  ---------------------------------------------------------------------
//  Hex

void
lp_util_hex_encode (const uint8_t *data, size_t len, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t k = 0; k < len; k++) {
        out [k * 2] = digits [data [k] >> 4];
        out [k * 2 + 1] = digits [data [k] & 15];
    }
    out [len * 2] = 0;
}

//  ---------------------------------------------------------------------
//  Self-test

void
lp_util_test (bool verbose)
{
    printf (" * util: ");
    (void) verbose;

    //  @selftest
    char id1 [LP_ID_CHARS + 1], id2 [LP_ID_CHARS + 1];
    lp_util_random_id (id1);
    lp_util_random_id (id2);
    assert (strlen (id1) == LP_ID_CHARS);
    assert (strspn (id1, "0123456789abcdef") == LP_ID_CHARS);
    assert (strcmp (id1, id2) != 0);

    assert (lp_util_utf8_valid ("", 0));
    assert (lp_util_utf8_valid ("plain ascii", 11));
    assert (lp_util_utf8_valid ("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert (lp_util_utf8_valid ("a\0b", 3));
    assert (!lp_util_utf8_valid ("\xff", 1));
    assert (!lp_util_utf8_valid ("\xc3", 1));                 //  truncated
    assert (!lp_util_utf8_valid ("\xc0\xaf", 2));             //  overlong
    assert (!lp_util_utf8_valid ("\xe0\x80\xaf", 3));         //  overlong
    assert (!lp_util_utf8_valid ("\xed\xa0\x80", 3));         //  surrogate
    assert (!lp_util_utf8_valid ("\xf4\x90\x80\x80", 4));     //  > U+10FFFF
    assert (!lp_util_utf8_valid ("\xe2\x82", 2));
    assert (!lp_util_utf8_valid ("\x80", 1));
    //  Long ASCII runs (checked 16 bytes at a time) with a bad or a
    //  good multi-byte character at every position
    char run [80];
    for (size_t at = 0; at + 2 <= sizeof run; at++) {
        memset (run, 'a', sizeof run);
        run [at] = (char) 0xff;
        assert (!lp_util_utf8_valid (run, sizeof run));
        run [at] = (char) 0xc3;
        run [at + 1] = (char) 0xa9;
        assert (lp_util_utf8_valid (run, sizeof run));
        assert (!lp_util_utf8_valid (run, at + 1));     //  cut after the lead byte
    }

    char date [32];
    lp_util_iso_now (date);
    assert (strlen (date) == 27);
    assert (date [4] == '-' && date [10] == 'T' && date [19] == '.' && date [26] == 'Z');
    int64_t now = lp_util_wall_usec ();
    assert (now > (int64_t) 1600000000 * 1000000);
    int64_t parsed = 0;
    assert (lp_util_iso_parse (date, &parsed) == 0);
    assert (parsed <= now && now - parsed < 60 * 1000000);
    assert (lp_util_iso_parse ("1970-01-01T00:00:00Z", &parsed) == 0 && parsed == 0);
    assert (lp_util_iso_parse ("2026-11-29T06:27:42.123456Z", &parsed) == 0);
    assert (parsed == (int64_t) 1795933662 * 1000000 + 123456);
    assert (lp_util_iso_parse ("2026-11-29T06:27:42.5+00:00", &parsed) == 0);
    assert (parsed == (int64_t) 1795933662 * 1000000 + 500000);
    assert (lp_util_iso_parse ("2000-02-29T00:00:00.000000Z", &parsed) == 0);
    assert (parsed == (int64_t) 951782400 * 1000000);
    assert (lp_util_iso_parse ("2026-11-29T06:27:42.123456", &parsed) == -1);
    assert (lp_util_iso_parse ("2026-11-29T06:27:42.Z", &parsed) == -1);
    assert (lp_util_iso_parse ("2026-13-29T06:27:42Z", &parsed) == -1);
    assert (lp_util_iso_parse ("2026-11-29T06:27:42+02:00", &parsed) == -1);
    assert (lp_util_iso_parse ("", &parsed) == -1);
    assert (lp_util_iso_parse (NULL, &parsed) == -1);

    char *saved = getenv ("LP_HOME")? strdup (getenv ("LP_HOME")): NULL;
    setenv ("LP_HOME", "/tmp/lphome", 1);
    char dir [256];
    assert (lp_util_profile_dir ("test", dir, sizeof dir) == 0);
    assert (streq (dir, "/tmp/lphome/profile_test"));
    assert (lp_util_profile_dir (NULL, dir, sizeof dir) == 0);
    assert (streq (dir, "/tmp/lphome/profile_default"));
    assert (lp_util_profile_dir ("test", dir, 10) == -1);
    unsetenv ("LP_HOME");
    assert (lp_util_profile_dir ("x", dir, sizeof dir) == 0);
    assert (strstr (dir, "/.luaparallel/profile_x"));
    if (saved) {
        setenv ("LP_HOME", saved, 1);
        free (saved);
    }

    uint8_t raw [4] = { 0x00, 0xab, 0x10, 0xff };
    char hex [9];
    lp_util_hex_encode (raw, 4, hex);
    assert (streq (hex, "00ab10ff"));
    //  @end
    printf ("OK\n");
}
