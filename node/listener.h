/* The node's listening sockets: accepting connections and handing them to
 * libwebsockets, pausing while file descriptors run out, and the cap on
 * connections that have not sent their request yet. */
#ifndef SIGNAL_LISTENER_H
#define SIGNAL_LISTENER_H

#include <stddef.h>

struct lws;
struct lws_vhost;
struct node;

/* Opens the listening socket for setting (SIGNAL_LISTEN or
 * SIGNAL_ADMIN_LISTEN) on *host:port, so that a bad address stops the node
 * at start; *host becomes the numeric address. Returns 0, or -1 with err
 * set. */
int listener_open(struct node *n, const char *setting, char **host, int port, char *err,
                  size_t errlen);
/* Starts accepting on the listener opened for setting, for vhost vh. */
void listener_start(struct node *n, const char *setting, struct lws_vhost *vh);
/* wsi's request headers are in, or wsi is gone: it is no longer a
 * handshake. Cheap for a wsi that was not one. */
void listener_request_in(struct node *n, struct lws *wsi);
/* Closes the listening sockets and forgets the handshakes. */
void listener_free(struct node *n);

#endif
