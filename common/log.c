/* Logging to stderr; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iso8601.h"

/* Each value is cut at this many bytes, so that a line always fits
 * LOG_LINE_MAX whole, escaped six times over (\u00XX) at worst. */
#define MAX_VALUE_BYTES 1024

static enum log_level current = LOG_INFO;
static enum log_format format = LOG_JSON;
static char node[129] = "-";
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"json", "text"};

void log_init(enum log_level level, enum log_format fmt, const char *node_id)
{
    current = level;
    format = fmt;
    snprintf(node, sizeof(node), "%s", node_id);
}

static int find_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

int log_level_parse(const char *name, enum log_level *out)
{
    int i = find_name(level_names, sizeof(level_names) / sizeof(level_names[0]), name);
    if (i >= 0)
        *out = (enum log_level)i;
    return i < 0 ? -1 : 0;
}

int log_format_parse(const char *name, enum log_format *out)
{
    int i = find_name(format_names, sizeof(format_names) / sizeof(format_names[0]), name);
    if (i >= 0)
        *out = (enum log_format)i;
    return i < 0 ? -1 : 0;
}

int log_enabled(enum log_level level)
{
    return level <= current;
}

/* ---- a bounded line buffer ---- */

struct line {
    char *buf;
    size_t size, len; /* len < size always: room for the NUL */
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->size - 1 - l->len)
        n = l->size - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return len;
}

/* The code point of the valid sequence of len > 1 bytes at s. */
static uint32_t code_point(const unsigned char *s, size_t len)
{
    uint32_t c = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++)
        c = c << 6 | (s[i] & 0x3f);
    return c;
}

/* Characters that are valid but that a reader may take for a line break
 * (C1 controls such as NEL, U+2028, U+2029: Python's splitlines, some
 * viewers) or that reorder what a terminal shows (the bidirectional
 * controls): written as \uXXXX in both formats. */
static bool hidden_break(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029 || c == 0x061c || c == 0x200e ||
           c == 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* Appends s escaped: for JSON as the inside of a string, for text with
 * control characters, quotes and backslashes as \xNN-style escapes, so that
 * nothing a client sends can end a line or a field. Invalid UTF-8 becomes
 * U+FFFD in JSON and \xNN in text. */
static void put_escaped(struct line *l, const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strnlen(s, MAX_VALUE_BYTES);
    bool cut = s[n] != '\0';
    while (n) {
        size_t k = utf8_seq(p, n);
        uint32_t c = k > 1 ? code_point(p, k) : 0;
        if (k > 1 && !hidden_break(c)) {
            put(l, (const char *)p, k);
        } else if (k > 1) {
            putf(l, "\\u%04x", (unsigned)c);
        } else if (k == 1 && *p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\') {
            put(l, (const char *)p, 1);
        } else if (k == 1 && (*p == '"' || *p == '\\')) {
            putf(l, "\\%c", *p);
        } else if (!json) {
            putf(l, "\\x%02x", *p);
        } else if (k == 0) {
            puts_(l, "\\ufffd");
        } else if (*p == '\n') {
            puts_(l, "\\n");
        } else if (*p == '\t') {
            puts_(l, "\\t");
        } else {
            putf(l, "\\u%04x", *p);
        }
        k = k ? k : 1;
        p += k;
        n -= k;
    }
    if (cut)
        puts_(l, "...");
}

/* Whether a text value must be quoted to read back as one field: it is
 * empty, holds a space, '=' or '"', or ends with the ':' that ends the
 * fields. */
static bool text_needs_quotes(const char *v)
{
    size_t n = strlen(v);
    return !n || strcspn(v, " =\"") < n || v[n - 1] == ':';
}

static void put_field(struct line *l, bool json, const char *name, const char *value)
{
    if (!value)
        return;
    if (json) {
        putf(l, ",\"%s\":\"", name);
        put_escaped(l, value, true);
        puts_(l, "\"");
        return;
    }
    bool quote = text_needs_quotes(value);
    putf(l, quote ? " %s=\"" : " %s=", name);
    put_escaped(l, value, false);
    if (quote)
        puts_(l, "\"");
}

static void put_number(struct line *l, bool json, const char *name, long long v)
{
    putf(l, json ? ",\"%s\":%lld" : " %s=%lld", name, v);
}

size_t log_format_line(char *out, size_t size, enum log_format fmt, long long unix_ms,
                       enum log_level level, const char *node_id, const char *event,
                       const struct log_fields *f, const char *msg)
{
    struct line l = {out, size, 0};
    bool json = fmt == LOG_JSON;
    char ts[ISO8601_LEN];
    iso8601_format(unix_ms, ts);
    out[0] = '\0';
    if (json) {
        putf(&l, "{\"time\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
        put_field(&l, true, "node", node_id);
        put_field(&l, true, "event", event);
    } else {
        putf(&l, "%s %-5s ", ts, level_names[level]);
        put_escaped(&l, node_id, false);
        puts_(&l, " ");
        put_escaped(&l, event, false);
    }
    if (f) {
        put_field(&l, json, "room", f->room);
        put_field(&l, json, "account", f->account);
        put_field(&l, json, "conn", f->conn);
        if (f->code)
            put_number(&l, json, "code", f->code);
        if (f->duration_ms >= 0)
            put_number(&l, json, "duration_ms", f->duration_ms);
    }
    if (json) {
        put_field(&l, true, "msg", msg);
        puts_(&l, "}");
    } else {
        puts_(&l, ": ");
        put_escaped(&l, msg, false);
    }
    return l.len;
}

void log_event(enum log_level level, const char *event, const struct log_fields *fields,
               const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    /* One byte beyond what a value keeps, so that a longer message is seen
     * to be cut (and marked so). */
    char msg[MAX_VALUE_BYTES + 2], line[LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    size_t n = log_format_line(line, LOG_LINE_MAX, format, now_ms, level, node, event, fields, msg);
    line[n] = '\n';
    /* One write per line keeps lines whole when several processes share a pipe. */
    fwrite(line, 1, n + 1, stderr);
}
