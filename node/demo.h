/* What --dev serves besides the route (docs/configuration.md, "Development
 * mode"): the demo call page and the browser client it loads, built into
 * the binary (web_assets.h), and a token endpoint for the page. server.c
 * routes here only when cfg.dev is set: without --dev, every /demo path is
 * an unknown path like any other (404). */
#ifndef SIGNAL_DEMO_H
#define SIGNAL_DEMO_H

#include <libwebsockets.h>
#include <stdbool.h>

struct node;

/* Whether path (as the client sent it, without the query) is /demo or
 * under /demo/. */
bool demo_is_path(const char *path);
/* Answers a request for such a path whole: a file, the redirect from /demo
 * to /demo/, a token, or 404/405. Returns as http_finish. */
int demo_serve(struct node *n, struct lws *wsi, const char *path);

#endif
