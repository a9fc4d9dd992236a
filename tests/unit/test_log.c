/* Unit tests of the log line format: JSON and text, fields, escaping. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <string.h>

#include "log.h"

static char line[LOG_LINE_MAX + 1];

static const char *fmt(enum log_format f, const struct log_fields *fields, const char *msg)
{
    /* 2026-11-29T15:01:34.567Z */
    log_format_line(line, sizeof(line), f, 1795964494567LL, LOG_INFO, "node-1", "conn_close",
                    fields, msg);
    return line;
}

Test(log, json_line_has_every_field)
{
    struct log_fields f = {"room-1", "alice", "node-1:ab:7", 1001, 250};
    json_error_t e;
    json_t *j = json_loads(fmt(LOG_JSON, &f, "connection closed"), 0, &e);
    cr_assert_not_null(j, "not JSON: %s (%s)", line, e.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "time")), "2026-11-29T15:01:34.567Z");
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(j, "node")), "node-1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "conn_close");
    cr_assert_str_eq(json_string_value(json_object_get(j, "room")), "room-1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "account")), "alice");
    cr_assert_str_eq(json_string_value(json_object_get(j, "conn")), "node-1:ab:7");
    cr_assert_eq(json_integer_value(json_object_get(j, "code")), 1001);
    cr_assert_eq(json_integer_value(json_object_get(j, "duration_ms")), 250);
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "connection closed");
    json_decref(j);
}

Test(log, absent_fields_are_left_out)
{
    struct log_fields f = {NULL, "bob", NULL, 0, -1};
    cr_assert_str_eq(
        fmt(LOG_JSON, &f, "m"),
        "{\"time\":\"2026-11-29T15:01:34.567Z\",\"level\":\"info\",\"node\":\"node-1\","
        "\"event\":\"conn_close\",\"account\":\"bob\",\"msg\":\"m\"}");
    cr_assert_str_eq(fmt(LOG_TEXT, NULL, "m"),
                     "2026-11-29T15:01:34.567Z info  node-1 conn_close: m");
}

Test(log, text_line)
{
    struct log_fields f = {"r", "a", "c", 4008, 0};
    cr_assert_str_eq(fmt(LOG_TEXT, &f, "too slow"),
                     "2026-11-29T15:01:34.567Z info  node-1 conn_close room=r account=a conn=c "
                     "code=4008 duration_ms=0: too slow");
}

Test(log, client_text_cannot_forge_a_line_or_a_field)
{
    struct log_fields f = {NULL, "x\"}\n{\"level\":\"error\"\\\x01\x7f", NULL, 0, -1};
    json_t *j = json_loads(fmt(LOG_JSON, &f, "m\r\n"), 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "account")),
                     "x\"}\n{\"level\":\"error\"\\\x01\x7f");
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    cr_assert_null(strchr(line, '\n'));
    fmt(LOG_TEXT, &f, "m\r\n");
    cr_assert_null(strchr(line, '\n'));
    cr_assert_null(strchr(line, '\r'));
    cr_assert(strstr(line, "account=\"x\\\"}\\x0a{\\\"level\\\":") != NULL, "%s", line);
}

Test(log, characters_read_as_line_breaks_or_reordering_are_escaped)
{
    /* NEL (U+0085), U+2028, U+2029 break lines for Python's splitlines and
     * some viewers; U+202E and U+061C reorder what a terminal shows. */
    const char *sub = "a\xc2\x85{\"level\":\"error\"}\xe2\x80\xa8"
                      "b\xe2\x80\xa9"
                      "c\xe2\x80\xae"
                      "d\xd8\x9c"
                      "e\xc2\xa0\xc3\xa9";
    struct log_fields f = {NULL, sub, NULL, 0, -1};
    json_t *j = json_loads(fmt(LOG_JSON, &f, sub), 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "account")), sub, "read back whole");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), sub);
    json_decref(j);
    cr_assert(strstr(line, "a\\u0085{\\\"level\\\":\\\"error\\\"}\\u2028b\\u2029c\\u202ed\\u061ce"
                           "\xc2\xa0\xc3\xa9") != NULL,
              "%s", line);
    fmt(LOG_TEXT, &f, sub);
    cr_assert(strstr(line, "account=\"a\\u0085{\\\"level\\\":\\\"error\\\"}\\u2028b\\u2029c\\u202ed"
                           "\\u061ce\xc2\xa0\xc3\xa9\": a\\u0085") != NULL,
              "%s", line);
    for (const char *p = line; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "a raw control byte in %s", line);
    cr_assert_null(strstr(line, "\xc2\x85"));
    cr_assert_null(strstr(line, "\xe2\x80\xa8"));
}

Test(log, text_values_that_would_split_are_quoted)
{
    struct log_fields f = {"", "x code=1000 conn=forged", "c:", 1, -1};
    cr_assert_str_eq(fmt(LOG_TEXT, &f, "m"),
                     "2026-11-29T15:01:34.567Z info  node-1 conn_close room=\"\" "
                     "account=\"x code=1000 conn=forged\" conn=\"c:\" code=1: m");
    struct log_fields g = {NULL, "say \"hi\"=", "node-1:ab:7", 0, -1};
    cr_assert_str_eq(fmt(LOG_TEXT, &g, "m"),
                     "2026-11-29T15:01:34.567Z info  node-1 conn_close account=\"say \\\"hi\\\"=\" "
                     "conn=node-1:ab:7: m");
}

Test(log, invalid_utf8_is_replaced_and_valid_kept)
{
    struct log_fields f = {NULL, "caf\xc3\xa9 \xff\xc0\xaf \xed\xa0\x80", NULL, 0, -1};
    json_t *j = json_loads(fmt(LOG_JSON, &f, "m"), 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "account")),
                     "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef"
                     "\xbf\xbd");
    json_decref(j);
    fmt(LOG_TEXT, &f, "m");
    cr_assert(strstr(line, "account=\"caf\xc3\xa9 \\xff\\xc0\\xaf \\xed\\xa0\\x80\":") != NULL,
              "%s", line);
}

Test(log, long_values_are_cut_and_the_line_stays_whole)
{
    static char big[5000];
    memset(big, '\n', sizeof(big) - 1);
    struct log_fields f = {big, big, big, 1, 1};
    size_t n = log_format_line(line, sizeof(line), LOG_JSON, 0, LOG_ERROR, big, big, &f, big);
    cr_assert_eq(n, strlen(line));
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "a line with every field at its longest is still JSON");
    cr_assert_eq(strlen(json_string_value(json_object_get(j, "msg"))), 1024 + 3);
    json_decref(j);
}

Test(log, parse_names)
{
    enum log_format f;
    enum log_level l;
    cr_assert_eq(log_format_parse("json", &f), 0);
    cr_assert_eq(f, LOG_JSON);
    cr_assert_eq(log_format_parse("text", &f), 0);
    cr_assert_eq(f, LOG_TEXT);
    cr_assert_eq(log_format_parse("xml", &f), -1);
    cr_assert_eq(log_level_parse("debug", &l), 0);
    cr_assert_eq(l, LOG_DEBUG);
}

Test(log, a_message_longer_than_a_value_is_marked_as_cut, .init = cr_redirect_stderr)
{
    static char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    log_init(LOG_INFO, LOG_TEXT, "node-1");
    log_event(LOG_INFO, "e", NULL, "%s", big);
    fflush(stderr);
    static char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, cr_get_redirected_stderr());
    out[n] = '\0';
    cr_assert(n > 1024 && strstr(out, "aaa...\n") != NULL, "%s", out);
}
