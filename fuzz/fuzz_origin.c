/* Fuzzes SIGNAL_ALLOWED_ORIGINS (common/origin.c): the list's parser and
 * the match of a request's Origin field, both fed by the input, split at
 * its first newline (list, then Origin). Checks, beyond no crash or leak:
 * - a list that does not parse leaves no rules;
 * - no list, or no Origin field, allows the request; a list never allows
 *   "null", nor an Origin with a path, query or fragment after the host;
 * - scheme and host match without case: the Origin in upper case gets the
 *   same answer;
 * - each exact rule allows the origin written from it (scheme://host:port),
 *   and each wildcard rule a name one label below its domain. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "origin.h"

static bool allowed(const struct origin_list *l, const char *origin)
{
    return origin_allowed(l, origin, strlen(origin));
}

/* Whether origin has something after its authority: '/', '?' or '#'. */
static bool has_path(const char *origin)
{
    const char *p = strstr(origin, "://");
    return p && strpbrk(p + 3, "/?#");
}

static void check_rules(const struct origin_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct origin_rule *r = &l->rules[i];
        const char *scheme = r->scheme ? r->scheme : "https";
        char origin[1100];
        int len;
        if (r->port)
            len = snprintf(origin, sizeof(origin), "%s://%s%s:%d", scheme,
                           r->subdomains ? "a." : "", r->host, r->port);
        else
            len = snprintf(origin, sizeof(origin), "%s://%s%s", scheme, r->subdomains ? "a." : "",
                           r->host);
        if (len > 0 && (size_t)len < sizeof(origin))
            FUZZ_CHECK(allowed(l, origin), "rule %zu does not allow [%s]", i, origin);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char *text = fuzz_cstring(data, size);
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    const char *origin = nl ? nl + 1 : NULL;
    struct origin_list l;
    char why[256];
    if (origin_list_parse(text, &l, why, sizeof(why)) < 0) {
        FUZZ_CHECK(l.n == 0 && !l.rules, "a failed parse left %zu rules", l.n);
        free(text);
        return 0;
    }
    FUZZ_CHECK(origin_allowed(&l, NULL, 0), "no Origin field refused");
    if (origin) {
        bool ok = allowed(&l, origin);
        if (!l.n)
            FUZZ_CHECK(ok, "no list refused [%s]", origin);
        else {
            FUZZ_CHECK(!allowed(&l, "null"), "null allowed");
            FUZZ_CHECK(!ok || !has_path(origin), "[%s] allowed with a path", origin);
            char *upper = fuzz_cstring((const uint8_t *)origin, strlen(origin));
            for (char *p = upper; *p; p++)
                *p = (char)toupper((unsigned char)*p);
            FUZZ_CHECK(allowed(&l, upper) == ok, "[%s] and [%s] differ", origin, upper);
            free(upper);
        }
    }
    check_rules(&l);
    origin_list_free(&l);
    free(text);
    return 0;
}
