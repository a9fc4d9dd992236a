/* Development mode; see dev.h. */
#include "dev.h"

#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEV_TTL_S (24 * 3600)

static int random_bytes(unsigned char *buf, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n ? 0 : -1;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

int dev_prepare(struct config *cfg)
{
    unsigned char raw[32];
    char secret[65];
    if (random_bytes(raw, sizeof(raw)) < 0)
        return -1;
    hex(raw, sizeof(raw), secret);
    free(cfg->jwt_alg);
    free(cfg->jwt_secret);
    free(cfg->jwt_key_file);
    cfg->jwt_alg = strdup("HS256");
    cfg->jwt_secret = strdup(secret);
    cfg->jwt_key_file = NULL;
    return 0;
}

static char *mint(const struct config *cfg, const char *sub, const char *name, const char *room)
{
    jwt_t *jwt;
    char *token = NULL;
    if (jwt_new(&jwt))
        return NULL;
    char grants[512];
    snprintf(grants, sizeof(grants), "{\"sub\":\"%s\",\"name\":\"%s\",\"rooms\":[\"%s\"]}", sub,
             name, room);
    if (!jwt_add_grants_json(jwt, grants) &&
        !jwt_add_grant_int(jwt, "exp", (long)time(NULL) + DEV_TTL_S) &&
        !jwt_set_alg(jwt, jwt_str_alg(cfg->jwt_alg), (const unsigned char *)cfg->jwt_secret,
                     (int)strlen(cfg->jwt_secret)))
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
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
    if (random_bytes(r, sizeof(r)) < 0)
        return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* a version 4 GUID */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    hex(r, sizeof(r), h);
    snprintf(room, sizeof(room), "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    const char *host = cfg->listen_host ? cfg->listen_host : "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    printf("signal-node --dev: tokens valid for 24 h. Open:\n");
    static const char *const users[][2] = {{"dev-alice", "Alice"}, {"dev-bob", "Bob"}};
    for (size_t i = 0; i < 2; i++) {
        char *token = mint(cfg, users[i][0], users[i][1], room);
        if (!token)
            return -1;
        printf("  %-5s ws://%s%s%s:%d%s/chat/realtime/%s?tk=%s\n", users[i][1], v6 ? "[" : "", host,
               v6 ? "]" : "", cfg->listen_port, cfg->path_prefix, room, token);
        free(token);
    }
    if (cfg->membership == MEMBERSHIP_REDIS)
        printf("  (membership redis: SADD the accounts dev-alice and dev-bob to the room's set)\n");
    fflush(stdout);
    return 0;
}
