/* A main() for a harness outside libFuzzer: runs every file named on the
 * command line, or found in a folder named there, through
 * LLVMFuzzerTestOneInput once. The normal build links each harness with it,
 * so that ctest replays the seed corpus (and any crash kept there) through
 * the invariants with gcc, and under ASan in the sanitizer build. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "fuzz.h"
#include "xalloc.h"

/* The harness's set-up, when it has one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Runs the file at path through the harness. Returns 0, or -1 when it
 * cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    struct buf b;
    buf_init(&b, 4096);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    /* A copy of exactly its size, so that ASan sees a read past the end. */
    size_t len = b.len;
    uint8_t *data = xmalloc(len ? len : 1);
    memcpy(data, b.data, len);
    buf_free(&b);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

/* Runs path, a file or every file of a folder (sorted, so that a run
 * repeats). Returns the number of inputs run, or -1 on a read error. */
static int replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) == 0 ? 1 : -1;
    struct dirent **names;
    int count = scandir(path, &names, NULL, alphasort), runs = 0;
    if (count < 0) {
        perror(path);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        char file[4096];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(file) != 0)
                runs = -1;
            else if (runs >= 0)
                runs++;
        }
        free(names[i]);
    }
    free(names);
    return runs;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int runs = replay(argv[i]);
        if (runs < 0)
            return 1;
        total += runs;
    }
    printf("replayed %d inputs\n", total);
    /* A harness with no seeds tests nothing. */
    return total > 0 ? 0 : 1;
}
