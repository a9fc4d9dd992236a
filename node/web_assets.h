/* The files the demo page is made of, built into the binary from web/demo/
 * and web/src/ (cmake/web_assets.cmake writes web_assets.c in the build
 * directory). node/demo.c serves them under --dev. */
#ifndef SIGNAL_WEB_ASSETS_H
#define SIGNAL_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path; /* the URL path: /demo/index.html, /demo/lib/client.js */
    const char *type; /* the Content-Type */
    const unsigned char *data;
    size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
