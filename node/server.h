/* The libwebsockets side: the context on the node's libevent loop, the HTTP
 * route and its answers (contract §3), and the one protocol callback. */
#ifndef SIGNAL_SERVER_H
#define SIGNAL_SERVER_H

#include "node.h"

int server_start(struct node *n);

#endif
