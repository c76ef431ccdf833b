/*  fuzz_main.c - runs a fuzz target over files, without libFuzzer

    Linked with a fuzz target in ordinary builds (gcc, the ASan pass), so
    that ctest replays the committed corpus (tests/fuzz/corpus/<target>/)
    as a regression test: usage fuzz_<target>_replay FILE|DIR...
*/
#include "lp_fuzz.h"
#include <dirent.h>
#include <sys/stat.h>

static int
s_run_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "%s: cannot open\n", path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    while (true) {
        if (size == capacity) {
            capacity = capacity * 2 + 4096;
            uint8_t *grown = (uint8_t *) realloc (data, capacity);
            CHECK (grown, "out of memory");
            data = grown;
        }
        size_t got = fread (data + size, 1, capacity - size, file);
        if (got == 0)
            break;
        size += got;
    }
    fclose (file);
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

int
main (int argc, char *argv [])
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv [i], &st) != 0) {
            fprintf (stderr, "%s: not found\n", argv [i]);
            return 1;
        }
        if (S_ISDIR (st.st_mode)) {
            DIR *dir = opendir (argv [i]);
            CHECK (dir, "%s: cannot list", argv [i]);
            struct dirent *entry;
            while ((entry = readdir (dir))) {
                if (entry->d_name [0] == '.')
                    continue;
                char path [4096];
                snprintf (path, sizeof (path), "%s/%s", argv [i], entry->d_name);
                if (s_run_file (path) != 0)
                    return 1;
                files++;
            }
            closedir (dir);
        }
        else {
            if (s_run_file (argv [i]) != 0)
                return 1;
            files++;
        }
    }
    printf ("%d inputs ran without a crash\n", files);
    return files > 0? 0: 1;
}
