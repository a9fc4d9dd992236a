/* A single-pass JSON validator that builds no tree and copies nothing: it
 * accepts exactly the texts jansson's json_loadb(text, len, JSON_DECODE_ANY)
 * accepts (tests/unit/test_json_scan.c checks this against jansson itself),
 * and records where the members of the top-level object, and of that
 * object's "data" object, lie in the text. The relay uses it to pass a
 * client's own bytes through (protocol_scan). */
#ifndef SIGNAL_JSON_SCAN_H
#define SIGNAL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/* jansson's JSON_PARSER_MAX_DEPTH: a value nested deeper is refused. */
#define JSON_SCAN_MAX_DEPTH 2048
/* Members recorded per object; an object with more is marked overflow. */
#define JSON_SCAN_MAX_MEMBERS 16

enum json_kind {
    JSON_KIND_OBJECT,
    JSON_KIND_ARRAY,
    JSON_KIND_STRING,
    JSON_KIND_NUMBER,
    JSON_KIND_TRUE,
    JSON_KIND_FALSE,
    JSON_KIND_NULL,
};

struct json_span {
    const char *p;
    size_t len;
};

struct json_member {
    struct json_span key;   /* between the quotes, as written */
    struct json_span value; /* the whole value as written (a string's quotes included) */
    enum json_kind kind;
    bool key_escaped;   /* the key holds a backslash escape */
    bool value_escaped; /* a string value holds a backslash escape */
};

struct json_object_scan {
    struct json_member m[JSON_SCAN_MAX_MEMBERS];
    size_t n;      /* members recorded, in text order */
    bool overflow; /* it has more than JSON_SCAN_MAX_MEMBERS */
};

struct json_scan {
    enum json_kind kind;          /* of the text's one value */
    struct json_object_scan root; /* when kind is JSON_KIND_OBJECT */
    /* The members of the object that is the value of the top-level
     * member keyed "data" (written without escapes); with several, the
     * last one's. data_found says whether there is one. */
    struct json_object_scan data;
    bool data_found;
    /* jansson ignores one NUL byte right after a number or a literal (its
     * reader loses it), so the text is valid with it; the text had one. */
    bool nul_skipped;
};

/* Validates text[0..len). Returns true, with *out filled in, when jansson
 * would accept it; false when it would not. */
bool json_scan(const char *text, size_t len, struct json_scan *out);

/* Whether key is exactly the ASCII string s (both unescaped). */
bool json_key_is(const struct json_member *m, const char *s);

#endif
