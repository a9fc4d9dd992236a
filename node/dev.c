/* Development mode: the random secret and the printed URLs; see dev.h. */
#include "dev.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev_token.h"
#include "mint.h"
#include "rand.h"
#include "xalloc.h"

#define DEV_TTL_S (24L * 3600)

/* Writes n bytes as 2n lowercase hex digits and a NUL into out. */
static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

void dev_prepare(struct config *cfg)
{
    unsigned char raw[32];
    char secret[65];
    rand_bytes(raw, sizeof(raw));
    hex(raw, sizeof(raw), secret);
    free(cfg->jwt_alg);
    free(cfg->jwt_secret);
    free(cfg->jwt_key_file);
    cfg->jwt_alg = xstrdup("HS256");
    cfg->jwt_secret = xstrdup(secret);
    cfg->jwt_key_file = NULL;
}

char *dev_mint(const struct config *cfg, const char *sub, const char *name, const char *room,
               long long exp)
{
    json_t *claims = dev_token_claims(sub, name, room, exp, cfg->jwt_issuer, cfg->jwt_audience);
    char *token = claims ? mint_token(claims, cfg->jwt_alg, (const unsigned char *)cfg->jwt_secret,
                                      strlen(cfg->jwt_secret))
                         : NULL;
    json_decref(claims);
    return token;
}

int dev_print_urls(const struct config *cfg)
{
    if (strncmp(cfg->jwt_alg, "HS", 2) != 0) {
        printf("signal-node --dev: %s tokens need the private key; mint them with signal-token\n",
               cfg->jwt_alg);
        fflush(stdout);
        return 0;
    }
    unsigned char r[16];
    char room[37], h[33];
    rand_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* a version 4 GUID */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    hex(r, sizeof(r), h);
    snprintf(room, sizeof(room), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    printf("signal-node --dev: tokens valid for 24 h. Open:\n");
    static const char *const users[][2] = {{"dev-alice", "Alice"}, {"dev-bob", "Bob"}};
    for (size_t i = 0; i < 2; i++) {
        char *token =
            dev_mint(cfg, users[i][0], users[i][1], room, (long long)time(NULL) + DEV_TTL_S);
        if (!token)
            return -1;
        printf("  %-5s ws://%s%s%s:%d%s/chat/realtime/%s?tk=%s\n", users[i][1], v6 ? "[" : "", host,
               v6 ? "]" : "", cfg->listen_port, cfg->path_prefix, room, token);
        free(token);
    }
    /* The demo call page (node/demo.c), in the same room; it assumes the
     * default route prefix unless told. */
    bool other_prefix = strcmp(cfg->path_prefix, "/api") != 0;
    printf("  %-5s http://%s%s%s:%d/demo/?room=%s%s%s\n", "Demo", v6 ? "[" : "", host,
           v6 ? "]" : "", cfg->listen_port, room, other_prefix ? "&prefix=" : "",
           other_prefix ? cfg->path_prefix : "");
    if (cfg->membership == MEMBERSHIP_REDIS)
        printf("  (membership redis: SADD the accounts dev-alice and dev-bob to the room's set)\n");
    fflush(stdout);
    return 0;
}
