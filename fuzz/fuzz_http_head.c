/* Fuzzes the node's own judgement of a request head (common/http_request.c,
 * http_head_problem) against the rules of docs/protocol.md, "Malformed
 * requests", written out again here: a request passes only when its
 * version is exactly HTTP/1.0 or HTTP/1.1, its target is a path (starts
 * with '/'), it has no Transfer-Encoding, and a WebSocket upgrade is
 * HTTP/1.1. The first byte holds the flags (Transfer-Encoding, Upgrade:
 * websocket, target absent, version absent); the rest is the target, a
 * newline, then the version. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_cstring(data + 1, size - 1);
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    struct http_head h = {
        .target = data[0] & 4 ? NULL : text,
        .version = data[0] & 8 || !nl ? NULL : nl + 1,
        .transfer_encoding = data[0] & 1,
        .websocket = data[0] & 2,
    };
    bool v10 = h.version && !strcmp(h.version, "HTTP/1.0");
    bool v11 = h.version && !strcmp(h.version, "HTTP/1.1");
    bool want = (v10 || v11) && h.target && h.target[0] == '/' && !h.transfer_encoding &&
                (!h.websocket || v11);
    const char *problem = http_head_problem(&h);
    FUZZ_CHECK(!problem == want, "target [%s] version [%s] te %d ws %d: %s",
               h.target ? h.target : "(none)", h.version ? h.version : "(none)",
               h.transfer_encoding, h.websocket, problem ? problem : "passes");
    FUZZ_CHECK(!problem || *problem, "an empty reason");
    free(text);
    return 0;
}
