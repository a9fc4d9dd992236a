/* The operations endpoints: GET /healthz (liveness), /readyz (readiness)
 * and /metrics (Prometheus). server.c routes to them, on the client listener
 * or, with SIGNAL_ADMIN_LISTEN, on the admin listener only. */
#ifndef SIGNAL_ADMIN_H
#define SIGNAL_ADMIN_H

#include <stdbool.h>

#include "buf.h"

struct node;

/* Whether path is one of the endpoints. */
bool admin_is_path(const char *path);
/* Builds the answer to GET path into body (initialised here, for the caller
 * to buf_free); returns the HTTP status and sets *type to its content type. */
int admin_answer(struct node *n, const char *path, struct buf *body, const char **type);
/* NULL when the node takes clients and, with Redis, its bus is connected;
 * else the reason, in a few words. */
const char *admin_not_ready(struct node *n);

#endif
