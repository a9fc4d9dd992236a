/* Redis Sentinel for node/redis.c (see sentinel.h): the asks (SENTINEL
 * get-master-addr-by-name, one sentinel after the other) and, per master,
 * the watch (SUBSCRIBE +switch-master on one sentinel, the next one when it
 * goes). Sentinels take no password here: the URL's is the master's. Each
 * connection to a sentinel is a plain hiredis async context on the node's
 * loop (hiredis's own libevent adapter: a few small replies, no priority
 * needed), never blocking. */
#include "sentinel.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timer.h"
#include "xalloc.h"

/* How long one sentinel has to answer (connect and reply): a sentinel on
 * the same network answers in a millisecond, and with three sentinels a dead
 * one costs an attempt half a second. */
#define ASK_TIMEOUT_MS 500
/* The watch tries the next sentinel at once, and pauses this long only when
 * a whole round of them failed, so that a dead sentinel first in the list
 * does not leave the failovers unwatched. */
#define WATCH_RETRY_MS 1000

struct watcher {
    sentinel_switch_fn fn;
    void *arg;
    struct watcher *next;
};

struct sentinel {
    struct event_base *evb;
    char *name;               /* the master's */
    struct redis_host *hosts; /* the sentinels, in the URL's order */
    size_t n_hosts;
    size_t good;              /* the sentinel that answered last: asked first */
    struct watcher *watchers; /* the connections to this master */
    redisAsyncContext *sub;   /* the watch's connection, or NULL */
    size_t at;                /* the sentinel it is to */
    size_t failures;          /* attempts to watch that failed in a row */
    bool subscribed, warned;
    struct event *timer; /* the watch's connect timeout, or its next attempt */
    struct sentinel *next;
};

struct sentinel_ask {
    struct sentinel *s;
    size_t first;          /* the sentinel asked first: s->good when the ask began */
    size_t tried;          /* sentinels asked so far */
    redisAsyncContext *ac; /* the one being asked, or NULL */
    struct event *timer;   /* its timeout, or the first step */
    sentinel_found_fn fn;
    void *arg;
    char why[256]; /* the last sentinel's failure */
};

static struct sentinel *masters; /* every watcher of the process */

/* Ends a context of ours now or, inside one of its callbacks, when that
 * returns; its callbacks still due see data NULL and do nothing. */
static void let_go(redisAsyncContext *ac, bool now)
{
    ac->data = NULL;
    if (now)
        redisAsyncFree(ac);
    else
        redisAsyncDisconnect(ac);
}

/* A context to sentinel h with our callbacks, or NULL with why set. */
static redisAsyncContext *connect_to(struct sentinel *s, const struct redis_host *h, void *data,
                                     redisConnectCallback *on_connect,
                                     redisDisconnectCallback *on_disconnect, char *why,
                                     size_t why_len)
{
    redisAsyncContext *ac = redisAsyncConnect(h->host, h->port);
    if (!ac || ac->err) { /* a name that does not resolve, say */
        snprintf(why, why_len, "%s:%d: %s", h->host, h->port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = data;
    redisLibeventAttach(ac, s->evb);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* ---- asking where the master is ---- */

static void on_ask_connect(const redisAsyncContext *ac, int status);
static void on_ask_disconnect(const redisAsyncContext *ac, int status);
static void on_ask_reply(redisAsyncContext *ac, void *reply_, void *privdata);

static void ask_done(struct sentinel_ask *q, const char *host, int port, const char *why)
{
    q->fn(q->arg, host, port, why);
    sentinel_ask_cancel(q);
}

/* Asks the next sentinel not asked yet; when none is left, answers that
 * none knew. */
static void ask_next(struct sentinel_ask *q)
{
    struct sentinel *s = q->s;
    evtimer_del(q->timer);
    while (q->tried < s->n_hosts) {
        const struct redis_host *h = &s->hosts[(q->first + q->tried++) % s->n_hosts];
        q->ac = connect_to(s, h, q, on_ask_connect, on_ask_disconnect, q->why, sizeof(q->why));
        if (!q->ac)
            continue;
        redisAsyncCommand(q->ac, on_ask_reply, NULL, "SENTINEL get-master-addr-by-name %s",
                          s->name);
        timer_add_ms(q->timer, ASK_TIMEOUT_MS);
        return;
    }
    char why[sizeof(q->why) + 64];
    snprintf(why, sizeof(why), "no sentinel told where it is; last: %s", q->why);
    ask_done(q, NULL, 0, why);
}

/* The sentinel being asked failed: why, then the next one. */
static void ask_failed(struct sentinel_ask *q, const char *fmt, const char *detail)
{
    const struct redis_host *h = &q->s->hosts[(q->first + q->tried - 1) % q->s->n_hosts];
    char what[160];
    snprintf(what, sizeof(what), fmt, detail);
    snprintf(q->why, sizeof(q->why), "%s:%d: %s", h->host, h->port, what);
    ask_next(q);
}

static void on_ask_connect(const redisAsyncContext *ac, int status)
{
    struct sentinel_ask *q = ac->data;
    if (!q || status == REDIS_OK)
        return;
    q->ac = NULL; /* hiredis frees it after this callback */
    ask_failed(q, "%s", ac->errstr);
}

static void on_ask_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct sentinel_ask *q = ac->data;
    if (!q)
        return;
    q->ac = NULL; /* hiredis frees it after this callback */
    ask_failed(q, "%s", ac->errstr[0] ? ac->errstr : "closed");
}

static void on_ask_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)privdata;
    struct sentinel_ask *q = ac->data;
    redisReply *reply = reply_;
    if (!q || !reply) /* a lost connection: on_ask_disconnect goes on */
        return;
    q->ac = NULL;
    let_go(ac, false);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        int port = atoi(reply->element[1]->str);
        if (port > 0 && port < 65536) {
            q->s->good = (q->first + q->tried - 1) % q->s->n_hosts;
            ask_done(q, reply->element[0]->str, port, NULL);
            return;
        }
    }
    if (reply->type == REDIS_REPLY_ERROR)
        ask_failed(q, "%s", reply->str);
    else /* nil: it monitors no master of that name */
        ask_failed(q, "does not know master %s", q->s->name);
}

/* Connects to the sentinels from on_ask_timer rather than in sentinel_ask,
 * so that fn never runs before sentinel_ask has returned. */
static void on_ask_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sentinel_ask *q = arg;
    if (!q->ac) {
        ask_next(q);
        return;
    }
    redisAsyncContext *ac = q->ac;
    q->ac = NULL;
    let_go(ac, true);
    ask_failed(q, "%s", "no answer in time");
}

struct sentinel_ask *sentinel_ask(struct sentinel *s, sentinel_found_fn fn, void *arg)
{
    struct sentinel_ask *q = xcalloc(1, sizeof(*q));
    q->s = s;
    q->first = s->good;
    q->fn = fn;
    q->arg = arg;
    q->timer = evtimer_new(s->evb, on_ask_timer, q);
    timer_add_ms(q->timer, 0);
    return q;
}

void sentinel_ask_cancel(struct sentinel_ask *q)
{
    if (!q)
        return;
    if (q->ac)
        let_go(q->ac, true);
    event_free(q->timer);
    free(q);
}

/* ---- following failovers ---- */

static void watch_start(struct sentinel *s);

/* The watch's connection is gone or never came: the next sentinel, at once
 * unless every one failed since the watch was last up. */
static void watch_lost(struct sentinel *s, const char *why)
{
    const struct redis_host *h = &s->hosts[s->at];
    if (!s->warned)
        log_warn("redis_sentinel_watch_lost",
                 "redis sentinel: cannot follow master %s on %s:%d (%s); trying the next sentinel",
                 s->name, h->host, h->port, why);
    else
        log_debug("redis_sentinel_watch_lost",
                  "redis sentinel: cannot follow master %s on %s:%d (%s)", s->name, h->host,
                  h->port, why);
    s->warned = true;
    s->at = (s->at + 1) % s->n_hosts;
    bool round = !s->subscribed && ++s->failures >= s->n_hosts;
    if (round)
        s->failures = 0;
    timer_add_ms(s->timer, round ? WATCH_RETRY_MS : 0);
    s->subscribed = false;
}

static void on_watch_connect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    if (!s || status == REDIS_OK)
        return;
    s->sub = NULL; /* hiredis frees it after this callback */
    watch_lost(s, ac->errstr);
}

static void on_watch_disconnect(const redisAsyncContext *ac, int status)
{
    struct sentinel *s = ac->data;
    if (!s)
        return;
    s->sub = NULL; /* hiredis frees it after this callback */
    watch_lost(s, status == REDIS_OK || !ac->errstr[0] ? "closed" : ac->errstr);
}

/* A +switch-master event: "<name> <old ip> <old port> <new ip> <new port>".
 * Tells every connection when it names our master. */
static void switched(struct sentinel *s, const char *event)
{
    char name[256], old_host[256], new_host[256];
    int old_port, new_port;
    if (sscanf(event, "%255s %255s %d %255s %d", name, old_host, &old_port, new_host, &new_port) !=
            5 ||
        strcmp(name, s->name) != 0)
        return;
    log_warn("redis_master_switched", "redis sentinel: master %s moved from %s:%d to %s:%d",
             s->name, old_host, old_port, new_host, new_port);
    for (struct watcher *w = s->watchers; w; w = w->next)
        w->fn(w->arg, new_host, new_port);
}

static void on_watch_event(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)privdata;
    struct sentinel *s = ac->data;
    redisReply *reply = reply_;
    if (!s || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (!strcmp(kind, "subscribe")) {
        const struct redis_host *h = &s->hosts[s->at];
        evtimer_del(s->timer);
        s->subscribed = true;
        s->warned = false;
        s->failures = 0;
        log_info("redis_sentinel_watching", "redis sentinel: following master %s on %s:%d", s->name,
                 h->host, h->port);
    } else if (!strcmp(kind, "message") && reply->element[2]->type == REDIS_REPLY_STRING) {
        switched(s, reply->element[2]->str);
    }
}

static void watch_start(struct sentinel *s)
{
    char why[256];
    s->sub =
        connect_to(s, &s->hosts[s->at], s, on_watch_connect, on_watch_disconnect, why, sizeof(why));
    if (!s->sub) {
        watch_lost(s, why);
        return;
    }
    redisAsyncCommand(s->sub, on_watch_event, NULL, "SUBSCRIBE +switch-master");
    timer_add_ms(s->timer, ASK_TIMEOUT_MS); /* to be subscribed */
}

static void on_watch_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sentinel *s = arg;
    if (!s->sub) {
        watch_start(s);
        return;
    }
    redisAsyncContext *ac = s->sub;
    s->sub = NULL;
    let_go(ac, true);
    watch_lost(s, "no answer in time");
}

/* ---- the watchers of the process ---- */

static bool same_master(const struct sentinel *s, const struct redis_url *url)
{
    if (strcmp(s->name, url->master) != 0 || s->n_hosts != url->n_sentinels)
        return false;
    for (size_t i = 0; i < s->n_hosts; i++)
        if (strcmp(s->hosts[i].host, url->sentinels[i].host) != 0 ||
            s->hosts[i].port != url->sentinels[i].port)
            return false;
    return true;
}

struct sentinel *sentinel_attach(struct event_base *evb, const struct redis_url *url,
                                 sentinel_switch_fn fn, void *arg)
{
    struct sentinel *s = masters;
    while (s && !same_master(s, url))
        s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->evb = evb;
        s->name = xstrdup(url->master);
        s->n_hosts = url->n_sentinels;
        s->hosts = xcalloc(s->n_hosts, sizeof(*s->hosts));
        for (size_t i = 0; i < s->n_hosts; i++) {
            s->hosts[i].host = xstrdup(url->sentinels[i].host);
            s->hosts[i].port = url->sentinels[i].port;
        }
        s->timer = evtimer_new(evb, on_watch_timer, s);
        s->next = masters;
        masters = s;
        watch_start(s);
    }
    struct watcher *w = xcalloc(1, sizeof(*w));
    w->fn = fn;
    w->arg = arg;
    w->next = s->watchers;
    s->watchers = w;
    return s;
}

void sentinel_detach(struct sentinel *s, void *arg)
{
    if (!s)
        return;
    for (struct watcher **p = &s->watchers; *p; p = &(*p)->next) {
        if ((*p)->arg == arg) {
            struct watcher *w = *p;
            *p = w->next;
            free(w);
            break;
        }
    }
    if (s->watchers)
        return;
    struct sentinel **p = &masters;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    if (s->sub)
        let_go(s->sub, true);
    event_free(s->timer);
    for (size_t i = 0; i < s->n_hosts; i++)
        free(s->hosts[i].host);
    free(s->hosts);
    free(s->name);
    free(s);
}
