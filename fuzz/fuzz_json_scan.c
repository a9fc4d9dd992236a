/* Fuzzes the single-pass JSON validator (common/json_scan.c) against
 * jansson, as tests/unit/test_json_scan.c does with generated texts:
 * - json_scan accepts a text exactly when json_loadb(JSON_DECODE_ANY) does,
 *   and says the same kind of value;
 * - what it records of the top-level object, and of its "data" object, is
 *   what jansson reads: each member's key, and its value as a span of the
 *   text that parses alone to the same value, of the same kind;
 * - a skipped NUL byte is really in the text. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "json_scan.h"

static enum json_kind kind_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return JSON_KIND_OBJECT;
    case JSON_ARRAY:
        return JSON_KIND_ARRAY;
    case JSON_STRING:
        return JSON_KIND_STRING;
    case JSON_TRUE:
        return JSON_KIND_TRUE;
    case JSON_FALSE:
        return JSON_KIND_FALSE;
    case JSON_NULL:
        return JSON_KIND_NULL;
    default:
        return JSON_KIND_NUMBER;
    }
}

/* Whether o's keys are all written without escapes and all different, so
 * that they are jansson's keys as they stand. */
static bool plain_keys(const struct json_object_scan *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->m[i].key_escaped)
            return false;
        for (size_t j = i + 1; j < o->n; j++)
            if (o->m[i].key.len == o->m[j].key.len &&
                !memcmp(o->m[i].key.p, o->m[j].key.p, o->m[i].key.len))
                return false;
    }
    return true;
}

/* Checks that every recorded member of o lies in text and, when the keys
 * are plain, is the member of obj (jansson's object) with that key. */
static void check_members(const struct json_object_scan *o, const json_t *obj, const char *text,
                          size_t len)
{
    FUZZ_CHECK(o->n <= JSON_SCAN_MAX_MEMBERS, "%zu members", o->n);
    FUZZ_CHECK(!o->overflow || o->n == JSON_SCAN_MAX_MEMBERS, "overflow with %zu", o->n);
    for (size_t i = 0; i < o->n; i++) {
        const struct json_member *m = &o->m[i];
        FUZZ_CHECK(m->key.p > text && m->key.p + m->key.len < text + len, "key %zu outside", i);
        FUZZ_CHECK(m->key.p[-1] == '"' && m->key.p[m->key.len] == '"', "key %zu unquoted", i);
        FUZZ_CHECK(m->value.p > m->key.p && m->value.p + m->value.len <= text + len,
                   "value %zu outside", i);
        FUZZ_CHECK(m->key_escaped == (memchr(m->key.p, '\\', m->key.len) != NULL),
                   "key %zu escaped?", i);
        FUZZ_CHECK(m->value_escaped == (m->kind == JSON_KIND_STRING &&
                                        memchr(m->value.p, '\\', m->value.len) != NULL),
                   "value %zu escaped?", i);
        /* The span is the value: it parses alone, to what jansson read. */
        json_t *alone = json_loadb(m->value.p, m->value.len, JSON_DECODE_ANY, NULL);
        FUZZ_CHECK(alone, "value %zu [%.*s] does not parse alone", i, (int)m->value.len,
                   m->value.p);
        FUZZ_CHECK(kind_of(alone) == m->kind, "value %zu: kind %d, jansson %d", i, m->kind,
                   kind_of(alone));
        if (!o->overflow && plain_keys(o)) {
            json_t *want = json_object_getn(obj, m->key.p, m->key.len);
            FUZZ_CHECK(want, "key %zu [%.*s] not in jansson's object", i, (int)m->key.len,
                       m->key.p);
            FUZZ_CHECK(json_equal(alone, want), "value %zu differs from jansson's", i);
        }
        json_decref(alone);
    }
    if (!o->overflow && plain_keys(o))
        FUZZ_CHECK(json_object_size(obj) == o->n, "%zu members, jansson %zu", o->n,
                   json_object_size(obj));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct json_scan scan;
    json_t *j = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    bool ok = json_scan(text, size, &scan);
    FUZZ_CHECK(ok == (j != NULL), "json_scan says %s, jansson %s", ok ? "valid" : "invalid",
               j ? "valid" : "invalid");
    if (!ok)
        return 0;
    FUZZ_CHECK(scan.kind == kind_of(j), "kind %d, jansson %d", scan.kind, kind_of(j));
    FUZZ_CHECK(!scan.nul_skipped || memchr(text, '\0', size), "a NUL skipped that is not there");
    if (scan.kind == JSON_KIND_OBJECT) {
        check_members(&scan.root, j, text, size);
        /* "data" is jansson's "data" when no key of the top level hides
         * another spelling of it (an escape) among the members not seen. */
        bool all_plain = !scan.root.overflow;
        for (size_t i = 0; i < scan.root.n; i++)
            all_plain = all_plain && !scan.root.m[i].key_escaped;
        const json_t *d = json_object_get(j, "data");
        if (all_plain)
            FUZZ_CHECK(scan.data_found == json_is_object(d), "data_found %d", scan.data_found);
        if (all_plain && scan.data_found)
            check_members(&scan.data, d, text, size);
    } else {
        FUZZ_CHECK(!scan.data_found, "data found in a %d", scan.kind);
    }
    json_decref(j);
    return 0;
}
