/* The allowed origins and the Origin field's check; see origin.h. */
#include "origin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* An origin or an entry, as spans of the text it was read from. */
struct parts {
    const char *scheme; /* NULL when absent (an entry without one) */
    size_t scheme_len;
    const char *host;
    size_t host_len;
    bool subdomains;
    int port; /* 0 when absent */
};

static bool is_scheme_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* Reads the host in [p, end): a name, or an IP literal in brackets. Returns
 * where it stops, or NULL when there is none. */
static const char *read_host(const char *p, const char *end)
{
    if (p < end && *p == '[') {
        const char *q = p + 1;
        while (q < end && (isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
            q++;
        return q > p + 1 && q < end && *q == ']' ? q + 1 : NULL;
    }
    const char *q = p;
    while (q < end && is_name_char(*q))
        q++;
    return q > p ? q : NULL;
}

/* Parses scheme://host[:port] (an entry: scheme:// optional, host may be
 * "*." + domain) from s[0..len). Returns whether it is one. */
static bool parse(const char *s, size_t len, bool entry, struct parts *o)
{
    const char *p = s, *end = s + len, *sep = NULL;
    memset(o, 0, sizeof(*o));
    for (const char *q = s; q + 3 <= end; q++)
        if (!memcmp(q, "://", 3)) {
            sep = q;
            break;
        }
    if (sep) {
        if (sep == s || !isalpha((unsigned char)*s))
            return false;
        for (const char *q = s; q < sep; q++)
            if (!is_scheme_char(*q))
                return false;
        o->scheme = s;
        o->scheme_len = (size_t)(sep - s);
        p = sep + 3;
    } else if (!entry) {
        return false;
    }
    if (entry && end - p > 2 && !memcmp(p, "*.", 2)) {
        o->subdomains = true;
        p += 2;
    }
    const char *host_end = read_host(p, end);
    if (!host_end || (o->subdomains && *p == '['))
        return false;
    o->host = p;
    o->host_len = (size_t)(host_end - p);
    p = host_end;
    if (p < end && *p == ':') {
        long port = 0;
        const char *digits = ++p;
        while (p < end && isdigit((unsigned char)*p) && p - digits < 5)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535)
            return false;
        o->port = (int)port;
    }
    return p == end;
}

/* The port an origin of scheme means without one: 80 for http, 443 for
 * https, 0 (none) for any other. */
static int default_port(const char *scheme, size_t len)
{
    if (len == 4 && !strncasecmp(scheme, "http", 4))
        return 80;
    if (len == 5 && !strncasecmp(scheme, "https", 5))
        return 443;
    return 0;
}

static char *lower_copy(const char *s, size_t len)
{
    char *out = xstrndup(s, len);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

int origin_list_parse(const char *spec, struct origin_list *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!spec || !*spec)
        return 0;
    size_t cap = 1;
    for (const char *p = spec; *p; p++)
        cap += *p == ',';
    out->rules = xcalloc(cap, sizeof(*out->rules));
    for (const char *p = spec;;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        struct parts e;
        if (!len) {
            snprintf(why, whylen, "an empty entry in \"%s\"", spec);
            goto bad;
        }
        if (len == 1 && *p == '*') {
            snprintf(why, whylen,
                     "\"*\" would allow every origin: leave the setting unset for that");
            goto bad;
        }
        if (!parse(p, len, true, &e)) {
            snprintf(why, whylen,
                     "expected [scheme://]host[:port] or [scheme://]*.domain[:port], got \"%.*s\"",
                     (int)len, p);
            goto bad;
        }
        struct origin_rule *r = &out->rules[out->n++];
        r->scheme = e.scheme ? lower_copy(e.scheme, e.scheme_len) : NULL;
        r->host = lower_copy(e.host, e.host_len);
        r->subdomains = e.subdomains;
        r->port = e.port;
        p += strcspn(p, ",");
        if (!*p++)
            return 0;
    }
bad:
    origin_list_free(out);
    return -1;
}

void origin_list_free(struct origin_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->rules[i].scheme);
        free(l->rules[i].host);
    }
    free(l->rules);
    memset(l, 0, sizeof(*l));
}

/* Whether origin o is one rule r names. */
static bool matches(const struct origin_rule *r, const struct parts *o)
{
    if (r->scheme ? strlen(r->scheme) != o->scheme_len ||
                        strncasecmp(r->scheme, o->scheme, o->scheme_len) != 0
                  : !default_port(o->scheme, o->scheme_len))
        return false;
    /* Ports compare as numbers, the default filled in: http://a and
     * http://a:80 are one origin. */
    int dflt = default_port(o->scheme, o->scheme_len);
    if ((o->port ? o->port : dflt) != (r->port ? r->port : dflt))
        return false;
    size_t hl = strlen(r->host);
    if (!r->subdomains)
        return hl == o->host_len && !strncasecmp(r->host, o->host, hl);
    return o->host_len > hl + 1 && o->host[o->host_len - hl - 1] == '.' &&
           !strncasecmp(r->host, o->host + o->host_len - hl, hl);
}

bool origin_allowed(const struct origin_list *l, const char *origin, size_t len)
{
    if (!l->n || !origin)
        return true;
    struct parts o;
    if (!parse(origin, len, false, &o))
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (matches(&l->rules[i], &o))
            return true;
    return false;
}
