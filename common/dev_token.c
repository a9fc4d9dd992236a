/* The dev token endpoint's request and claims; see dev_token.h. */
#include "dev_token.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

enum { SEEN_SUB = 1, SEEN_NAME = 2, SEEN_ROOM = 4, SEEN_TTL = 8 };

void dev_token_init(struct dev_token_req *r)
{
    memset(r, 0, sizeof(*r));
    r->ttl_s = DEV_TOKEN_TTL_S;
}

/* Whether s (len bytes) is an account id the endpoint mints for: 1-64 of
 * [A-Za-z0-9._-], which needs no escaping in a URL, a log line or JSON. */
static bool sub_ok(const char *s, size_t len)
{
    if (len < 1 || len > DEV_TOKEN_MAX_SUB)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

/* Whether s is a display name: UTF-8 text of at most 64 bytes, no control
 * characters (a name is shown, and a line break in it would only confuse). */
static bool name_ok(const char *s, size_t len)
{
    if (len > DEV_TOKEN_MAX_NAME || !utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Decimal digits only, 1..DEV_TOKEN_MAX_TTL_S; -1 otherwise. */
static long ttl_of(const char *s)
{
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 6)
        return -1;
    long v = strtol(s, NULL, 10);
    return v >= 1 && v <= DEV_TOKEN_MAX_TTL_S ? v : -1;
}

const char *dev_token_param(struct dev_token_req *r, const char *param)
{
    const char *eq = strchr(param, '=');
    size_t klen = eq ? (size_t)(eq - param) : strlen(param);
    const char *v = eq ? eq + 1 : "";
    size_t vlen = strlen(v);
    unsigned bit = 0;
    if (klen == 3 && !strncmp(param, "sub", 3)) {
        if (!sub_ok(v, vlen))
            return "sub must be 1-64 characters of A-Z a-z 0-9 . _ -";
        bit = SEEN_SUB;
        memcpy(r->sub, v, vlen + 1);
    } else if (klen == 4 && !strncmp(param, "name", 4)) {
        if (!name_ok(v, vlen))
            return "name must be UTF-8 text of at most 64 bytes, without control characters";
        bit = SEEN_NAME;
        memcpy(r->name, v, vlen + 1);
    } else if (klen == 4 && !strncmp(param, "room", 4)) {
        if (!protocol_is_guid(v, vlen))
            return "room must be a GUID";
        bit = SEEN_ROOM;
        for (size_t i = 0; i <= vlen; i++)
            r->room[i] = (char)tolower((unsigned char)v[i]);
    } else if (klen == 3 && !strncmp(param, "ttl", 3)) {
        long ttl = ttl_of(v);
        if (ttl < 0)
            return "ttl must be a whole number of seconds from 1 to 86400";
        bit = SEEN_TTL;
        r->ttl_s = ttl;
    } else {
        return NULL;
    }
    if (r->seen & bit)
        return "a parameter is given twice";
    r->seen |= bit;
    return NULL;
}

const char *dev_token_missing(const struct dev_token_req *r)
{
    if (!(r->seen & SEEN_SUB))
        return "sub is required";
    if (!(r->seen & SEEN_ROOM))
        return "room is required";
    return NULL;
}

json_t *dev_token_claims(const char *sub, const char *name, const char *room, long long exp,
                         const char *iss, const char *aud)
{
    json_t *claims =
        json_pack("{s:s, s:[s], s:I}", "sub", sub, "rooms", room, "exp", (json_int_t)exp);
    if (claims && name && *name)
        json_object_set_new(claims, "name", json_string(name));
    if (claims && iss)
        json_object_set_new(claims, "iss", json_string(iss));
    if (claims && aud)
        json_object_set_new(claims, "aud", json_string(aud));
    return claims;
}
