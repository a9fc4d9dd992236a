/* --dev: a random HMAC secret and ready-made URLs with tokens, so that a
 * first run needs no key management (the demo page it serves is
 * node/demo.c). Never for production. */
#ifndef SIGNAL_DEV_H
#define SIGNAL_DEV_H

#include "config.h"

/* Sets a random HS256 secret in cfg (when it has no key of its own).
 * Randomness and memory cannot fail (rand.h, xalloc.h). */
void dev_prepare(struct config *cfg);
/* Prints two URLs (two accounts, one room) to stdout, with tokens signed by
 * the configured secret, and the demo page's URL for that room; with RS and
 * ES keys it can only say so. Returns 0,
 * or -1 when libjwt cannot sign. */
int dev_print_urls(const struct config *cfg);
/* A token for account sub, called name (none when ""), member of room,
 * expiring at exp (Unix seconds), signed with cfg's HS secret, with cfg's
 * issuer and audience, which the node checks. Returns it (malloc'd), or
 * NULL when libjwt cannot sign. */
char *dev_mint(const struct config *cfg, const char *sub, const char *name, const char *room,
               long long exp);

#endif
