/* The Redis bus's Lua scripts (node/lua/, built into the binary): loaded
 * once per connection with SCRIPT LOAD and run with EVALSHA, so that a
 * heartbeat sends a digest rather than the whole sweep. A script Redis does
 * not know (NOSCRIPT: a SCRIPT FLUSH, or a failover to a replica that never
 * loaded it) is sent again whole with EVAL, and every script is loaded
 * again. Inside MULTI the error only shows in EXEC's reply; the restore that
 * uses MULTI is then written again at the next heartbeat, as after any
 * failure. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis.h"
#include "log.h"
#include "xalloc.h"

extern const char lua_join[], lua_leave[], lua_load[], lua_sweep[], lua_goodbye[];

static const char *const sources[N_SCRIPTS] = {lua_join, lua_leave, lua_load, lua_sweep,
                                               lua_goodbye};
static char shas[N_SCRIPTS][41]; /* hex SHA-1 of each source, as Redis names it */

/* A script call on its way: what is needed to send it again with EVAL. */
struct script_call {
    struct bus_redis *b;
    enum script which;
    redisCallbackFn *fn;
    void *privdata;
    bool whole;  /* sent with EVAL */
    int argc;    /* of argv, without the command, script and numkeys */
    char **argv; /* copies: numkeys, then keys and args */
};

static const char *sha_of(enum script which)
{
    if (!shas[which][0]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_Digest(sources[which], strlen(sources[which]), md, &len, EVP_sha1(), NULL);
        for (unsigned i = 0; i < len && i < 20; i++)
            snprintf(shas[which] + 2 * (size_t)i, 3, "%02x", md[i]);
    }
    return shas[which];
}

static void call_free(struct script_call *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c);
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata);

/* Sends the call as EVALSHA (whole = false) or EVAL; -1 when not sent. */
static int send_call(struct script_call *c, bool whole)
{
    c->whole = whole;
    const char **argv = xcalloc((size_t)c->argc + 2, sizeof(*argv));
    argv[0] = whole ? "EVAL" : "EVALSHA";
    argv[1] = whole ? sources[c->which] : sha_of(c->which);
    for (int i = 0; i < c->argc; i++)
        argv[i + 2] = c->argv[i];
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, c->argc + 2, argv, NULL);
    free(argv);
    if (len < 0)
        return -1; /* out of memory in hiredis */
    int rc = redis_formatted(c->b->publisher, on_reply, c, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct script_call *c = privdata;
    redisReply *reply = reply_;
    bool unknown = reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8);
    /* An ACL written before the scripts ran by digest may allow EVAL only. */
    bool denied =
        reply && reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOPERM", 6) && !c->whole;
    if (denied && !c->b->whole_scripts) {
        log_warn("redis_script_digest_denied",
                 "redis bus%s: the ACL refuses EVALSHA (%s); sending the scripts whole with EVAL "
                 "(allow +evalsha +script|load to save that traffic)",
                 c->b->tag, reply->str);
        c->b->whole_scripts = true;
    }
    if (unknown || denied) {
        if (unknown)
            script_load_all(c->b);
        if (send_call(c, true) == 0)
            return; /* the same call again, its callback with it */
        reply = NULL;
    }
    if (c->fn)
        c->fn(ac, reply, c->privdata);
    call_free(c);
}

int script_run(struct bus_redis *b, enum script which, redisCallbackFn *fn, void *privdata,
               int numkeys, const char *const *argv)
{
    struct script_call *c = xcalloc(1, sizeof(*c));
    c->b = b;
    c->which = which;
    c->fn = fn;
    c->privdata = privdata;
    int n = 0;
    while (argv[n])
        n++;
    c->argc = n + 1;
    c->argv = xcalloc((size_t)c->argc, sizeof(*c->argv));
    char num[16];
    snprintf(num, sizeof(num), "%d", numkeys);
    c->argv[0] = xstrdup(num);
    for (int i = 0; i < n; i++)
        c->argv[i + 1] = xstrdup(argv[i]);
    if (send_call(c, b->whole_scripts) < 0) {
        call_free(c);
        return -1;
    }
    return 0;
}

void script_load_all(struct bus_redis *b)
{
    if (b->whole_scripts)
        return;
    for (int i = 0; i < N_SCRIPTS; i++)
        redis_command(b->publisher, NULL, NULL, "SCRIPT LOAD %s", sources[i]);
}
