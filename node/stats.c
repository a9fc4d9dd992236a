/* The fixed label sets of the node's counters; see stats.h. One table each,
 * read by the code that counts (conn.c) and by the one that exports
 * (admin.c). */
#include "stats.h"

#include <string.h>

static const int close_codes[] = {STATS_CLOSE_CODES};
_Static_assert(sizeof(close_codes) / sizeof(close_codes[0]) + 1 == N_CLOSE_CODES,
               "N_CLOSE_CODES counts STATS_CLOSE_CODES and other");

const char *const stats_error_names[N_ERRORS] = {"invalid_json", "invalid_message", "rate_limited",
                                                 "unknown_target"};

size_t stats_close_index(int code)
{
    for (size_t i = 0; i < N_CLOSE_CODES - 1; i++)
        if (close_codes[i] == code)
            return i;
    return N_CLOSE_CODES - 1;
}

int stats_close_code(size_t i)
{
    return i < N_CLOSE_CODES - 1 ? close_codes[i] : 0;
}

enum error_kind stats_error_kind(const char *code)
{
    for (size_t i = 0; i < N_ERRORS; i++)
        if (!strcmp(code, stats_error_names[i]))
            return (enum error_kind)i;
    return ERR_INVALID_MESSAGE;
}
