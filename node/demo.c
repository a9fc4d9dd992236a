/* The demo page, its files and the dev token endpoint; see demo.h. */
#include "demo.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev.h"
#include "dev_token.h"
#include "http.h"
#include "node.h"
#include "web_assets.h"

#define TEXT "text/plain; charset=utf-8"

/* A page and scripts from a development node: never cached, so an edit
 * shows at the next reload; and read as the type given, nothing else. */
static const char *const file_headers[] = {"cache-control:", "no-store",
                                           "x-content-type-options:", "nosniff", NULL};
/* A token is fetched by the demo page of another node too (the browser
 * tests join one room through several nodes): any origin may read it. */
static const char *const token_headers[] = {"cache-control:", "no-store",
                                            "access-control-allow-origin:", "*", NULL};

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

static int send_text(struct lws *wsi, int status, const char *text)
{
    return http_end(wsi, http_send_with(wsi, status, TEXT, text, strlen(text), token_headers));
}

/* GET /demo/token: a token signed with the node's own secret, for the
 * account, name, room and lifetime the query asks for. */
static int serve_token(struct node *n, struct lws *wsi)
{
    const struct config *cfg = &n->cfg;
    if (strncmp(cfg->jwt_alg, "HS", 2) != 0 || !cfg->jwt_secret)
        return send_text(wsi, 501, "--dev tokens need an HS secret");
    struct dev_token_req req;
    dev_token_init(&req);
    const char *param, *why = NULL;
    for (int i = 0; !why && (param = http_query_param(wsi, i)); i++)
        why = dev_token_param(&req, param);
    if (!why)
        why = dev_token_missing(&req);
    if (why)
        return send_text(wsi, 400, why);
    long long exp = (long long)time(NULL) + req.ttl_s;
    char *token = dev_mint(cfg, req.sub, req.name, req.room, exp);
    json_t *answer = token ? json_pack("{s:s, s:s, s:I}", "token", token, "accountId", req.sub,
                                       "expiresAt", (json_int_t)exp)
                           : NULL;
    free(token);
    char *body = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    if (!body)
        return send_text(wsi, 500, "cannot sign a token");
    int rc = http_send_with(wsi, 200, "application/json", body, strlen(body), token_headers);
    free(body);
    return http_end(wsi, rc);
}

int demo_serve(struct node *n, struct lws *wsi, const char *path)
{
    if (!http_is_get_or_head(wsi))
        return http_finish(wsi, 405);
    if (!strcmp(path, "/demo")) {
        static const char *const to_folder[] = {"location:", "/demo/", "cache-control:", "no-store",
                                                NULL};
        return http_end(wsi, http_send_with(wsi, 301, TEXT, "", 0, to_folder));
    }
    if (!strcmp(path, "/demo/token"))
        return serve_token(n, wsi);
    const struct web_asset *a = find_asset(path);
    if (!a)
        return http_finish(wsi, 404);
    return http_end(wsi,
                    http_send_with(wsi, 200, a->type, (const char *)a->data, a->len, file_headers));
}
