/* Fuzzes the route matcher (common/protocol.c, protocol_route) with the
 * request path as the node gets it: it must match exactly
 * "{prefix}/chat/realtime/{GUID}" (docs/protocol.md, "Connecting"), a GUID
 * being 8-4-4-4-12 hex digits, and give the room as the GUID in lower case.
 * The first byte picks the prefix (SIGNAL_PATH_PREFIX) among a few. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "protocol.h"

static const char *const prefixes[] = {"/api", "", "/sphere"};

/* Whether s is a GUID as docs/protocol.md spells it. */
static bool guid(const char *s)
{
    static const char form[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof(form) - 1)
        return false;
    for (size_t i = 0; form[i]; i++)
        if (form[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *prefix = prefixes[data[0] % (sizeof(prefixes) / sizeof(prefixes[0]))];
    char *path = fuzz_cstring(data + 1, size - 1);
    char room[PROTOCOL_GUID_LEN + 1];
    memset(room, 'X', sizeof(room));
    bool got = protocol_route(prefix, path, room);
    size_t plen = strlen(prefix), rlen = strlen("/chat/realtime/");
    const char *id = path + plen + rlen;
    bool want = strlen(path) >= plen + rlen && !strncmp(path, prefix, plen) &&
                !strncmp(path + plen, "/chat/realtime/", rlen) && guid(id);
    FUZZ_CHECK(got == want, "prefix [%s], path [%s]: %s", prefix, path,
               got ? "matched" : "not matched");
    if (got) {
        FUZZ_CHECK(room[PROTOCOL_GUID_LEN] == '\0', "room not terminated");
        for (size_t i = 0; i < PROTOCOL_GUID_LEN; i++)
            FUZZ_CHECK(room[i] == tolower((unsigned char)id[i]), "room [%s]", room);
    }
    free(path);
    return 0;
}
