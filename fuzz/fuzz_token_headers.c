/* Fuzzes finding the token in a request's headers (common/auth.c): every
 * input is read both as an Authorization header (auth_token_from_bearer)
 * and as a Cookie header (auth_token_from_cookie), and each answer is
 * compared with the rule of docs/protocol.md ("The token") as written
 * here:
 * - Bearer: "Bearer" in any case after optional spaces, then spaces, then
 *   one token (no space or tab inside) and optional spaces;
 * - Cookie: the first cookie named exactly AuthToken, its value without
 *   surrounding spaces and quotes, %-decoded; none when that is empty or
 *   holds a NUL byte. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "fuzz.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..*len) without the blanks around it. */
static const char *trim(const char *s, size_t *len)
{
    while (*len && blank(*s)) {
        s++;
        (*len)--;
    }
    while (*len && blank(s[*len - 1]))
        (*len)--;
    return s;
}

static char *bearer_rule(const char *h)
{
    size_t len = strlen(h);
    h = trim(h, &len);
    if (len < 7 || strncasecmp(h, "bearer", 6) != 0 || !blank(h[6]))
        return NULL;
    size_t n = len - 6;
    const char *t = trim(h + 6, &n);
    for (size_t i = 0; i < n; i++)
        if (blank(t[i]))
            return NULL;
    return n ? xstrndup(t, n) : NULL;
}

static int hex(char c)
{
    static const char digits[] = "0123456789abcdef0123456789ABCDEF";
    const char *d = c ? strchr(digits, c) : NULL;
    return d ? (int)(d - digits) % 16 : -1;
}

/* The AuthToken value v[0..len), unquoted and %-decoded, or NULL. */
static char *cookie_token(const char *v, size_t len)
{
    v = trim(v, &len);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    char *out = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '%' && i + 2 < len && hex(v[i + 1]) >= 0 && hex(v[i + 2]) >= 0) {
            out[n++] = (char)(hex(v[i + 1]) * 16 + hex(v[i + 2]));
            i += 2;
        } else {
            out[n++] = v[i];
        }
    }
    out[n] = '\0';
    if (!n || memchr(out, '\0', n)) {
        free(out);
        return NULL;
    }
    return out;
}

static char *cookie_rule(const char *h)
{
    for (const char *p = h;; p++) {
        size_t len = strcspn(p, ";");
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : 0;
        const char *name = trim(p, &name_len);
        if (eq && name_len == 9 && !memcmp(name, "AuthToken", 9))
            return cookie_token(eq + 1, len - (size_t)(eq + 1 - p));
        p += len;
        if (!*p)
            return NULL;
    }
}

/* Both NULL, or the same string. */
static bool same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = fuzz_cstring(data, size);
    char *got = auth_token_from_bearer(h), *want = bearer_rule(h);
    FUZZ_CHECK(same(got, want), "Bearer: got [%s], want [%s]", got ? got : "(none)",
               want ? want : "(none)");
    free(got);
    free(want);
    got = auth_token_from_cookie(h);
    want = cookie_rule(h);
    FUZZ_CHECK(same(got, want), "Cookie: got [%s], want [%s]", got ? got : "(none)",
               want ? want : "(none)");
    free(got);
    free(want);
    free(h);
    return 0;
}
