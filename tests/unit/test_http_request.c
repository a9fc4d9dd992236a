/* Unit tests of the node's own checks of an HTTP request
 * (common/http_request.c). */
#include <criterion/criterion.h>

#include "http_request.h"

static const char *problem(const char *target, const char *version, bool te, bool ws)
{
    struct http_head h = {
        .target = target, .version = version, .transfer_encoding = te, .websocket = ws};
    return http_head_problem(&h);
}

Test(http_request, ordinary_requests_pass)
{
    cr_expect_null(problem("/api/chat/realtime/x", "HTTP/1.1", false, true));
    cr_expect_null(problem("/api/chat/realtime/x", "HTTP/1.1", false, false));
    cr_expect_null(problem("/healthz", "HTTP/1.0", false, false));
    cr_expect_null(problem("/", "HTTP/1.1", false, false));
}

Test(http_request, paths_are_not_judged_here)
{
    /* The route matches on the path as sent: these are 404s, not 400s. */
    cr_expect_null(problem("//api/chat", "HTTP/1.1", false, true));
    cr_expect_null(problem("/x/../api/./chat%2Frealtime", "HTTP/1.1", false, true));
    cr_expect_null(problem("/{braces}", "HTTP/1.1", false, false));
}

Test(http_request, only_http_1_0_and_1_1)
{
    const char *bad[] = {"HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.1 ", "HTTP/11",
                         "FOO/1.1",  "HTTP/1",   "",         "HTTP/1.10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_not_null(problem("/", bad[i], false, false), "%s", bad[i]);
    cr_expect_not_null(problem("/", NULL, false, false), "HTTP/0.9: no version");
}

Test(http_request, origin_form_only)
{
    const char *bad[] = {"http://a/api/chat", "https://a:443/", "a:443", "*", "", "api/chat"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_not_null(problem(bad[i], "HTTP/1.1", false, false), "%s", bad[i]);
    cr_expect_not_null(problem(NULL, "HTTP/1.1", false, false));
}

Test(http_request, no_transfer_encoding)
{
    cr_expect_not_null(problem("/", "HTTP/1.1", true, false));
    cr_expect_not_null(problem("/", "HTTP/1.1", true, true));
    cr_expect_not_null(problem("/", "HTTP/1.0", true, false));
}

Test(http_request, websocket_needs_http_1_1)
{
    cr_expect_not_null(problem("/", "HTTP/1.0", false, true));
    cr_expect_null(problem("/", "HTTP/1.0", false, false));
}
