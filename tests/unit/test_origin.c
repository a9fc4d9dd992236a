/* Unit tests of SIGNAL_ALLOWED_ORIGINS's parsing and matching
 * (common/origin.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "origin.h"

static struct origin_list list(const char *spec)
{
    struct origin_list l;
    char why[256] = "";
    cr_assert_eq(origin_list_parse(spec, &l, why, sizeof(why)), 0, "%s: %s", spec, why);
    return l;
}

static bool allowed(const struct origin_list *l, const char *origin)
{
    return origin_allowed(l, origin, origin ? strlen(origin) : 0);
}

Test(origin, no_list_allows_everything)
{
    struct origin_list l = list("");
    cr_expect_eq(l.n, 0);
    cr_expect(allowed(&l, "https://evil.example"));
    cr_expect(allowed(&l, "null"));
    cr_expect(allowed(&l, NULL));
}

Test(origin, absent_field_is_allowed)
{
    struct origin_list l = list("https://app.example.com");
    cr_expect(allowed(&l, NULL));
    origin_list_free(&l);
}

Test(origin, exact_origin)
{
    struct origin_list l = list("https://app.example.com");
    cr_expect(allowed(&l, "https://app.example.com"));
    cr_expect(allowed(&l, "HTTPS://App.Example.COM"));
    cr_expect(allowed(&l, "https://app.example.com:443"), "the default port, written out");
    cr_expect_not(allowed(&l, "http://app.example.com"), "another scheme");
    cr_expect_not(allowed(&l, "https://app.example.com:8443"), "another port");
    cr_expect_not(allowed(&l, "https://x.app.example.com"), "a subdomain");
    cr_expect_not(allowed(&l, "https://app.example.com.evil.net"));
    cr_expect_not(allowed(&l, "https://evilapp.example.com"));
    cr_expect_not(allowed(&l, "https://app.example.co"));
    origin_list_free(&l);
}

Test(origin, explicit_port)
{
    struct origin_list l = list("http://localhost:3000, https://[::1]:8443");
    cr_expect(allowed(&l, "http://localhost:3000"));
    cr_expect_not(allowed(&l, "http://localhost"));
    cr_expect_not(allowed(&l, "http://localhost:30000"));
    cr_expect(allowed(&l, "https://[::1]:8443"));
    cr_expect_not(allowed(&l, "https://[::1]"));
    origin_list_free(&l);
}

Test(origin, wildcard_is_every_subdomain_not_the_domain)
{
    struct origin_list l = list("https://*.example.com");
    cr_expect(allowed(&l, "https://app.example.com"));
    cr_expect(allowed(&l, "https://a.b.example.com"));
    cr_expect_not(allowed(&l, "https://example.com"));
    cr_expect_not(allowed(&l, "https://notexample.com"));
    cr_expect_not(allowed(&l, "https://.example.com"));
    cr_expect_not(allowed(&l, "https://app.example.com.evil.net"));
    cr_expect_not(allowed(&l, "http://app.example.com"));
    cr_expect_not(allowed(&l, "https://app.example.com:8443"));
    origin_list_free(&l);
}

Test(origin, no_scheme_is_http_or_https)
{
    struct origin_list l = list("*.example.com, app.test:8080");
    cr_expect(allowed(&l, "https://app.example.com"));
    cr_expect(allowed(&l, "http://app.example.com"));
    cr_expect(allowed(&l, "http://app.example.com:80"));
    cr_expect_not(allowed(&l, "http://app.example.com:443"), "https's port under http");
    cr_expect_not(allowed(&l, "ws://app.example.com"));
    cr_expect_not(allowed(&l, "chrome-extension://app.example.com"));
    cr_expect(allowed(&l, "http://app.test:8080"));
    cr_expect(allowed(&l, "https://app.test:8080"));
    cr_expect_not(allowed(&l, "https://app.test"));
    origin_list_free(&l);
}

Test(origin, other_schemes_match_only_themselves)
{
    struct origin_list l = list("chrome-extension://abcdefghijklmnop");
    cr_expect(allowed(&l, "chrome-extension://abcdefghijklmnop"));
    cr_expect_not(allowed(&l, "https://abcdefghijklmnop"));
    cr_expect_not(allowed(&l, "chrome-extension://abcdefghijklmnop:80"));
    origin_list_free(&l);
}

Test(origin, what_is_not_an_origin_matches_nothing)
{
    struct origin_list l = list("https://app.example.com, *.example.com");
    const char *bad[] = {"null",
                         "",
                         "app.example.com",
                         "https://app.example.com/",
                         "https://app.example.com/path",
                         "https://app.example.com?x",
                         "https://user@app.example.com",
                         "https://app.example.com:",
                         "https://app.example.com:0",
                         "https://app.example.com:65536",
                         "https://app.example.com:443x",
                         "https://app.example.com, https://evil.net",
                         "https://app.example.com https://evil.net",
                         " https://app.example.com",
                         "https://*.example.com",
                         "://app.example.com",
                         "1https://app.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_not(allowed(&l, bad[i]), "\"%s\"", bad[i]);
    /* A NUL inside the field ends nothing: the length counts. */
    cr_expect_not(origin_allowed(&l, "https://app.example.com\0x", 25));
    origin_list_free(&l);
}

Test(origin, bad_entries_are_refused_with_a_reason)
{
    const char *bad[] = {"*",
                         "https://app.example.com/",
                         "https://app.example.com, ",
                         ",https://a.test",
                         "https://a.test,,https://b.test",
                         "https://",
                         "https://a.test:99999",
                         "a.*.example.com",
                         "*.",
                         "*.[::1]",
                         "https://a b.test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct origin_list l;
        char why[256] = "";
        cr_expect_eq(origin_list_parse(bad[i], &l, why, sizeof(why)), -1, "\"%s\"", bad[i]);
        cr_expect_neq(why[0], '\0', "\"%s\": no reason", bad[i]);
        cr_expect_eq(l.n, 0);
        cr_expect_null(l.rules);
    }
}

Test(origin, entries_are_trimmed)
{
    struct origin_list l = list(" https://a.test ,\thttp://b.test:8080 ");
    cr_expect_eq(l.n, 2);
    cr_expect(allowed(&l, "https://a.test"));
    cr_expect(allowed(&l, "http://b.test:8080"));
    origin_list_free(&l);
}
