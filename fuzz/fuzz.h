/* What every harness in fuzz/ shares: the libFuzzer entry points and the
 * check that turns a broken invariant into a crash libFuzzer reports.
 *
 * Adding a target: one file fuzz/fuzz_<target>.c that defines
 * LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize when it needs set-up),
 * with a comment on top saying what it checks, plus a few seeds in
 * fuzz/corpus/<target>/ and, if it helps, a libFuzzer dictionary
 * fuzz/<target>.dict. CMake and tools/fuzz.sh find it by its name: the
 * fuzz build (SIGNAL_FUZZ) makes it a libFuzzer binary, and the normal
 * build links it with replay.c so that ctest runs its seeds. */
#ifndef SIGNAL_FUZZ_H
#define SIGNAL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with a message when cond is false: an invariant the harness
 * checks, reported by libFuzzer (and ctest) as a crash with its input. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data[0..size) as a malloc'd C string, as the node holds a header or a
 * path: C code reading it stops at the first NUL byte, if there is one. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
