/* The dev token endpoint's request, GET /demo/token?sub=&name=&room=&ttl=
 * (served under --dev only, node/demo.c), read and checked, and the claims
 * of the token it asks for; the same claims make the URLs --dev prints at
 * start (node/dev.c). Pure code on the query parameters as libwebsockets
 * hands them over: split at '&', with %XX and '+' already decoded, so that
 * nothing here decodes a second time. */
#ifndef SIGNAL_DEV_TOKEN_H
#define SIGNAL_DEV_TOKEN_H

#include <jansson.h>
#include <stdbool.h>

#include "protocol.h"

#define DEV_TOKEN_MAX_SUB 64       /* characters of [A-Za-z0-9._-] */
#define DEV_TOKEN_MAX_NAME 64      /* bytes of UTF-8 */
#define DEV_TOKEN_TTL_S 3600L      /* when ttl is not given */
#define DEV_TOKEN_MAX_TTL_S 86400L /* a day */

struct dev_token_req {
    char sub[DEV_TOKEN_MAX_SUB + 1];
    char name[DEV_TOKEN_MAX_NAME + 1]; /* "": no name claim */
    char room[PROTOCOL_GUID_LEN + 1];  /* lower case */
    long ttl_s;
    unsigned seen; /* one bit per parameter read, to refuse a repeat */
};

void dev_token_init(struct dev_token_req *r);
/* Reads one query parameter, "name=value". Returns NULL, or what is wrong
 * with it in a few words, for a 400. Unknown parameters are ignored. */
const char *dev_token_param(struct dev_token_req *r, const char *param);
/* After the last parameter: NULL when the request is complete, else what
 * is missing. */
const char *dev_token_missing(const struct dev_token_req *r);
/* The claims for account sub, called name (when given), member of room
 * (the rooms claim), expiring at exp; iss and aud when not NULL, so that a
 * node that checks them accepts the token. A new reference; NULL only when
 * jansson runs out of memory. */
json_t *dev_token_claims(const char *sub, const char *name, const char *room, long long exp,
                         const char *iss, const char *aud);

#endif
