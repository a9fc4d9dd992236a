/* The libwebsockets side: the context on the node's libevent loop, the HTTP
 * route and its answers (docs/protocol.md, "HTTP answers"), and the one
 * protocol callback. */
#ifndef SIGNAL_SERVER_H
#define SIGNAL_SERVER_H

#include "node.h"

#include <stddef.h>

/* Each returns -1 with one line in err naming the setting at fault. */
/* Opens the listening sockets (listener.c): a bad address stops the node at
 * start. */
int server_check_listen(struct node *n, char *err, size_t errlen);
int server_start(struct node *n, char *err, size_t errlen);

#endif
