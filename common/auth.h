/* JWT verification and the identity it yields (docs/configuration.md, "JWT";
 * docs/protocol.md, "The account object"), plus finding the token in a
 * request (docs/protocol.md, "The token"). Pure code: no sockets, no event
 * loop.
 *
 * libjwt 1.10 verifies with whatever algorithm the token names and checks no
 * claims, so this module pins the configured algorithm and checks exp, nbf,
 * iss and aud itself. */
#ifndef SIGNAL_AUTH_H
#define SIGNAL_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct auth; /* opaque: pinned algorithm, key, issuer, audience, leeway */

/* The verified holder of a token. */
struct identity {
    char *account_id; /* "sub" */
    json_t *account;  /* {"id",..,"updatedAt"}: docs/protocol.md, "The account object" */
    json_t *rooms;    /* the "rooms" claim (array), or NULL when absent/not an array */
    long long exp;    /* "exp", seconds since the epoch */
};

/* Creates a verifier. alg is one of HS256/384/512, RS256/384/512,
 * ES256/384/512. HS* need secret (used as raw bytes); RS* and ES* need key_file, a
 * PEM public key (or certificate) of the matching type and curve. issuer and
 * audience may be NULL (then not checked). On error returns NULL and writes
 * one line into err naming the setting at fault, e.g.
 * "SIGNAL_JWT_KEY_FILE: RS256 needs an RSA public key". */
struct auth *auth_new(const char *alg, const char *secret, const char *key_file, const char *issuer,
                      const char *audience, long leeway_s, char *err, size_t errlen);
void auth_free(struct auth *a);

/* Verifies token at time now. Returns 0 and fills *out (caller frees it with
 * identity_clear), or -1 with a short reason in *why (static string, for logs):
 * bad signature, wrong alg, expired, not yet valid, wrong iss/aud, missing
 * sub or exp, malformed. */
int auth_verify(const struct auth *a, const char *token, time_t now, struct identity *out,
                const char **why);
void identity_clear(struct identity *id);

/* True when the identity's "rooms" claim lists room (compared case-insensitively). */
bool identity_has_room(const struct identity *id, const char *room);

/* Token sources (docs/protocol.md, "The token"). Each returns a malloc'd
 * token or NULL.
 * auth_token_from_bearer: "Bearer <jwt>" (scheme case-insensitive, surrounding
 * spaces allowed). auth_token_from_cookie: the AuthToken cookie of a Cookie
 * header (quotes stripped, %-decoded). */
char *auth_token_from_bearer(const char *authorization);
char *auth_token_from_cookie(const char *cookie);

#endif
