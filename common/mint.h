/* Minting a JWT: the one signer that `--dev` (node/dev.c) and the
 * signal-token tool share, so that what they sign is what common/auth.c
 * verifies. The caller chooses every claim. */
#ifndef SIGNAL_MINT_H
#define SIGNAL_MINT_H

#include <jansson.h>
#include <stddef.h>

/* Signs claims (a JSON object, written as it is) with alg: one of HS256/384/
 * 512, with key the HMAC secret (raw bytes), or RS256/384/512, ES256/384/512,
 * with key a PEM private key of the matching type. Returns the token
 * (malloc'd), or NULL when alg is unknown or "none", or when libjwt cannot
 * sign: a key that does not suit alg, or libjwt out of memory. */
char *mint_token(const json_t *claims, const char *alg, const unsigned char *key, size_t key_len);

#endif
