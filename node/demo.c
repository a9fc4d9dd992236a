/* The demo page and its files; see demo.h. */
#include "demo.h"

#include <string.h>

#include "http.h"
#include "node.h"
#include "web_assets.h"

#define TEXT "text/plain; charset=utf-8"

/* A page and scripts from a development node: never cached, so an edit
 * shows at the next reload; and read as the type given, nothing else. */
static const char *const file_headers[] = {"cache-control:", "no-store",
                                           "x-content-type-options:", "nosniff", NULL};

bool demo_is_path(const char *path)
{
    return !strcmp(path, "/demo") || !strncmp(path, "/demo/", 6);
}

static const struct web_asset *find_asset(const char *path)
{
    if (!strcmp(path, "/demo/"))
        path = "/demo/index.html";
    for (const struct web_asset *a = web_assets; a->path; a++)
        if (!strcmp(a->path, path))
            return a;
    return NULL;
}

int demo_serve(struct node *n, struct lws *wsi, const char *path)
{
    (void)n;
    if (!http_is_get_or_head(wsi))
        return http_finish(wsi, 405);
    if (!strcmp(path, "/demo")) {
        static const char *const to_folder[] = {"location:", "/demo/", "cache-control:", "no-store",
                                                NULL};
        return http_end(wsi, http_send_with(wsi, 301, TEXT, "", 0, to_folder));
    }
    const struct web_asset *a = find_asset(path);
    if (!a)
        return http_finish(wsi, 404);
    return http_end(wsi,
                    http_send_with(wsi, 200, a->type, (const char *)a->data, a->len, file_headers));
}
