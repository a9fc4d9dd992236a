/* The per-account limits on this node, for server.c: an upgrade that passed
 * every other check is counted against its account's join budget and
 * connection cap (common/accounts.h) and answered 429 beyond them; a close
 * gives the slot back. */
#ifndef SIGNAL_ACCOUNT_LIMIT_H
#define SIGNAL_ACCOUNT_LIMIT_H

#include <libwebsockets.h>

#include "accounts.h"
#include "auth.h"
#include "node.h"

/* The node's table (node->accounts), from SIGNAL_JOIN_RATE_PER_MIN,
 * SIGNAL_JOIN_BURST and SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT; freed with
 * accounts_free once lws has closed every connection. */
struct accounts *account_limit_new(const struct config *cfg);
/* Counts an upgrade of id's account to room: 0 when admitted (its
 * connection counts until account_limit_leave), else it has answered 429,
 * counted and perhaps logged the refusal, and returns what the
 * confirm-upgrade callback returns then (1, or -1 when the answer could not
 * be written). */
int account_limit_admit(struct node *n, struct lws *wsi, const struct identity *id,
                        const char *room);
/* A connection that account_limit_admit admitted has closed. */
void account_limit_leave(struct node *n, const char *account_id);

#endif
