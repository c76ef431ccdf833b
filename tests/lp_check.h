/*  lp_check.h - the checks of every C program under tests/

    CHECK (cond, format, ...)   cond holds, or the test fails: file:line,
                                the condition and the message on stderr,
                                then the program ends
    FAIL (format, ...)          fails where it stands (CHECK that is false)
    SKIP (format, ...)          the test cannot run on this machine: prints
                                "SKIP: <reason>" and exits 77, which ctest
                                reports as Skipped (SKIP_RETURN_CODE 77 in
                                tests/CMakeLists.txt), never as Passed

    A failure exits with status 1. A program that defines LP_CHECK_ABORT
    before including this (the fuzz targets) aborts instead, so libFuzzer
    records a crash and keeps the input. Checks do not depend on NDEBUG.
    Shell tests have the same three as fail, finish and skip in
    tests/lib.sh.
*/
#ifndef LP_CHECK_H_INCLUDED
#define LP_CHECK_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

#ifdef LP_CHECK_ABORT
#   define LP_CHECK_END_() abort ()
#else
#   define LP_CHECK_END_() exit (1)
#endif

#define CHECK(cond, ...) do { \
    if (!(cond)) { \
        fprintf (stderr, "%s:%d: CHECK failed: %s\n    ", __FILE__, __LINE__, #cond); \
        fprintf (stderr, __VA_ARGS__); \
        fprintf (stderr, "\n"); \
        fflush (stderr); \
        LP_CHECK_END_ (); \
    } \
} while (0)

#define FAIL(...) CHECK (0, __VA_ARGS__)

#define SKIP(...) do { \
    fflush (stdout); \
    printf ("SKIP: "); \
    printf (__VA_ARGS__); \
    printf ("\n"); \
    fflush (stdout); \
    exit (77); \
} while (0)

#endif
