/* Logging: one line per event on stderr, as a JSON object (the default, for
 * log pipelines) or as text (for people, under --dev). Every line carries the
 * time, the level, this node's id and an event name, and, where they apply,
 * the room, account, connection, close code and duration, so that logs from
 * many nodes can be merged, filtered and counted. Every field is escaped
 * (and quoted in text when it would not read back as one field): what a
 * client controls cannot forge a line or a field. Tokens, secrets and
 * message payloads are never passed in. */
#ifndef SIGNAL_LOG_H
#define SIGNAL_LOG_H

#include <stddef.h>

/* The longest line: every field whole however it is escaped. */
#define LOG_LINE_MAX ((size_t)64 * 1024)

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_JSON, LOG_TEXT };

/* The fields of a line beyond time, level, node and event; NULL strings,
 * code 0 and a negative duration are left out. */
struct log_fields {
    const char *room, *account, *conn;
    int code;
    long long duration_ms;
};

void log_init(enum log_level level, enum log_format format, const char *node_id);
int log_level_parse(const char *name, enum log_level *out);
int log_format_parse(const char *name, enum log_format *out);
int log_enabled(enum log_level level);
/* Writes one line for event (a short snake_case name), with fields (or
 * NULL) and a message. */
void log_event(enum log_level level, const char *event, const struct log_fields *fields,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Formats one line into out (at most size bytes, NUL-terminated, no newline)
 * and returns its length: the part of log_event that tests can see. */
size_t log_format_line(char *out, size_t size, enum log_format format, long long unix_ms,
                       enum log_level level, const char *node, const char *event,
                       const struct log_fields *fields, const char *msg);

#define log_error(event, ...) log_event(LOG_ERROR, event, NULL, __VA_ARGS__)
#define log_warn(event, ...) log_event(LOG_WARN, event, NULL, __VA_ARGS__)
#define log_info(event, ...) log_event(LOG_INFO, event, NULL, __VA_ARGS__)
#define log_debug(event, ...)                                                                      \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_event(LOG_DEBUG, event, NULL, __VA_ARGS__);                                        \
    } while (0)

#endif
