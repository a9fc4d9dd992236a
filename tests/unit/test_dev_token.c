/* Unit tests of the dev token endpoint's request: every parameter, accepted
 * and refused, and the claims it makes. */
#include <criterion/criterion.h>
#include <string.h>

#include "dev_token.h"

#define ROOM "0F8FAD5B-D9CB-469F-A165-70867728950E"

/* Reads params (NULL-terminated) into r; returns the first problem, or
 * what is missing, or NULL. */
static const char *read_all(struct dev_token_req *r, const char *const *params)
{
    dev_token_init(r);
    for (size_t i = 0; params[i]; i++) {
        const char *why = dev_token_param(r, params[i]);
        if (why)
            return why;
    }
    return dev_token_missing(r);
}

#define READ(r, ...) read_all(r, (const char *const[]){__VA_ARGS__, NULL})

Test(dev_token, a_full_request)
{
    struct dev_token_req r;
    cr_assert_null(READ(&r, "sub=alice.1_x-y", "name=Alice Müller", "room=" ROOM, "ttl=60"));
    cr_assert_str_eq(r.sub, "alice.1_x-y");
    cr_assert_str_eq(r.name, "Alice Müller");
    cr_assert_str_eq(r.room, "0f8fad5b-d9cb-469f-a165-70867728950e");
    cr_assert_eq(r.ttl_s, 60);
}

Test(dev_token, defaults_and_unknown_parameters)
{
    struct dev_token_req r;
    cr_assert_null(READ(&r, "room=" ROOM, "x=1", "sub=bob", "cache-buster", "subx=1"));
    cr_assert_str_eq(r.sub, "bob");
    cr_assert_str_eq(r.name, "");
    cr_assert_eq(r.ttl_s, DEV_TOKEN_TTL_S);
    cr_assert_null(READ(&r, "sub=bob", "room=" ROOM, "name="));
    cr_assert_str_eq(r.name, "");
}

Test(dev_token, required_parameters)
{
    struct dev_token_req r;
    cr_assert_str_eq(READ(&r, "room=" ROOM), "sub is required");
    cr_assert_str_eq(READ(&r, "sub=a"), "room is required");
    cr_assert_str_eq(READ(&r, "name=A"), "sub is required");
}

Test(dev_token, sub_bounds)
{
    struct dev_token_req r;
    char sub[80] = "sub=";
    memset(sub + 4, 'a', 64);
    cr_assert_null(READ(&r, sub, "room=" ROOM));
    cr_assert_eq(strlen(r.sub), 64);
    sub[4 + 64] = 'a';
    cr_assert_not_null(READ(&r, sub, "room=" ROOM));
    static const char *const bad[] = {"sub=",  "sub",     "sub=a b", "sub=a/b",
                                      "sub=é", "sub=a\"", "sub=a%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not_null(READ(&r, bad[i], "room=" ROOM), "%s", bad[i]);
}

Test(dev_token, name_bounds)
{
    struct dev_token_req r;
    char name[80] = "name=";
    memset(name + 5, 'n', 64);
    cr_assert_null(READ(&r, "sub=a", name, "room=" ROOM));
    name[5 + 64] = 'n';
    cr_assert_not_null(READ(&r, "sub=a", name, "room=" ROOM));
    /* 32 two-byte characters are 64 bytes; one more is too many. */
    char utf[80] = "name=";
    for (int i = 0; i < 32; i++)
        strcat(utf, "é");
    cr_assert_null(READ(&r, "sub=a", utf, "room=" ROOM));
    strcat(utf, "é");
    cr_assert_not_null(READ(&r, "sub=a", utf, "room=" ROOM));
    static const char *const bad[] = {"name=\xc3", "name=\xff", "name=a\nb", "name=a\x7f",
                                      "name=\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not_null(READ(&r, "sub=a", bad[i], "room=" ROOM), "%s", bad[i]);
}

Test(dev_token, room_must_be_a_guid)
{
    struct dev_token_req r;
    static const char *const bad[] = {"room=", "room=x", "room=" ROOM "0",
                                      "room=0f8fad5b_d9cb-469f-a165-70867728950e",
                                      "room=0f8fad5b-d9cb-469f-a165-70867728950g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_str_eq(READ(&r, "sub=a", bad[i]), "room must be a GUID", "%s", bad[i]);
}

Test(dev_token, ttl_bounds)
{
    struct dev_token_req r;
    cr_assert_null(READ(&r, "sub=a", "room=" ROOM, "ttl=1"));
    cr_assert_eq(r.ttl_s, 1);
    cr_assert_null(READ(&r, "sub=a", "room=" ROOM, "ttl=86400"));
    cr_assert_eq(r.ttl_s, 86400);
    static const char *const bad[] = {"ttl=0",   "ttl=86401", "ttl=-5",
                                      "ttl=+5",  "ttl=",      "ttl=1.5",
                                      "ttl=1e3", "ttl= 5",    "ttl=99999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not_null(READ(&r, "sub=a", "room=" ROOM, bad[i]), "%s", bad[i]);
}

Test(dev_token, a_repeated_parameter_is_refused)
{
    struct dev_token_req r;
    cr_assert_str_eq(READ(&r, "sub=a", "sub=b", "room=" ROOM), "a parameter is given twice");
    cr_assert_str_eq(READ(&r, "sub=a", "room=" ROOM, "ttl=5", "ttl=5"),
                     "a parameter is given twice");
}

Test(dev_token, claims)
{
    json_t *c = dev_token_claims("a", "Ann", "r", 1700000000, NULL, NULL);
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(text, "{\"exp\":1700000000,\"name\":\"Ann\",\"rooms\":[\"r\"],\"sub\":\"a\"}");
    free(text);
    json_decref(c);
    c = dev_token_claims("a", "", "r", 5, "iss1", "aud1");
    text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(
        text, "{\"aud\":\"aud1\",\"exp\":5,\"iss\":\"iss1\",\"rooms\":[\"r\"],\"sub\":\"a\"}");
    free(text);
    json_decref(c);
}
