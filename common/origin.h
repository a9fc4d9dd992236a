/* SIGNAL_ALLOWED_ORIGINS (docs/configuration.md; docs/operations.md,
 * "Origin"): the origins a browser page may open the route from, and
 * whether a request's Origin field names one of them. Pure code.
 *
 * An entry is [scheme://]host[:port], host a name or an IP literal in
 * brackets, or "*." and a domain for every name below it (not the domain
 * itself). Without a scheme, http and https both match; without a port,
 * the scheme's default (80, 443). Scheme and host compare without case. */
#ifndef SIGNAL_ORIGIN_H
#define SIGNAL_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

struct origin_rule {
    char *scheme;    /* lower case; NULL: http or https */
    char *host;      /* lower case; for a wildcard, the domain after "*." */
    bool subdomains; /* a wildcard: names that end in "." + host */
    int port;        /* 0: the scheme's default */
};

struct origin_list {
    struct origin_rule *rules;
    size_t n; /* 0: no list */
};

/* Parses a comma-separated list into *out; an empty spec is no list.
 * Returns 0, or -1 with *out empty and why naming the entry at fault. */
int origin_list_parse(const char *spec, struct origin_list *out, char *why, size_t whylen);
void origin_list_free(struct origin_list *l);
/* Whether a request whose Origin field is origin (len bytes; NULL when the
 * field is absent) may use the route: always without a list or without
 * the field (a browser sends it on every WebSocket, so its absence is no
 * cross-site page), else only when an entry matches. "null" and anything
 * not of the form scheme://host[:port] match none. */
bool origin_allowed(const struct origin_list *l, const char *origin, size_t len);

#endif
