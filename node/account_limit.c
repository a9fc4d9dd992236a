/* Joins and connections per account on this node; see account_limit.h and
 * docs/operations.md, "Joins and connections per account". */
#include "account_limit.h"

#include "accounts.h"
#include "clock.h"
#include "http.h"
#include "log.h"

/* A flooding account is logged once a minute, not at each refusal. */
#define LOG_EVERY_MS 60000

struct accounts *account_limit_new(const struct config *cfg)
{
    const struct accounts_limits l = {
        (double)cfg->join_rate_per_min / 60.0, (double)cfg->join_burst,
        (unsigned long)cfg->max_connections_per_account, LOG_EVERY_MS};
    return accounts_new(&l);
}

int account_limit_admit(struct node *n, struct lws *wsi, const struct identity *id,
                        const char *room)
{
    struct accounts_answer a = accounts_join(n->accounts, id->account_id, clock_mono_ms());
    if (a.verdict == ACCOUNTS_ADMIT)
        return 0;
    bool too_many = a.verdict == ACCOUNTS_TOO_MANY;
    n->stats.refused[too_many ? REFUSED_ACCOUNT_CAP : REFUSED_ACCOUNT_RATE]++;
    if (a.log) {
        struct log_fields f = {room, id->account_id, NULL, 0, -1};
        if (too_many)
            log_event(
                LOG_INFO, "account_limited", &f,
                "upgrade refused with 429: %ld connections on this node already "
                "(SIGNAL_MAX_CONNECTIONS_PER_ACCOUNT); its next refusals for %d s go unlogged",
                n->cfg.max_connections_per_account, LOG_EVERY_MS / 1000);
        else
            log_event(LOG_INFO, "account_limited", &f,
                      "upgrade refused with 429: joining too often (SIGNAL_JOIN_BURST, "
                      "SIGNAL_JOIN_RATE_PER_MIN), retry after %ld s; its next refusals for %d s go "
                      "unlogged",
                      a.retry_after_s, LOG_EVERY_MS / 1000);
    }
    return http_reply_retry(wsi, 429, a.retry_after_s) ? -1 : 1;
}

void account_limit_leave(struct node *n, const char *account_id)
{
    accounts_leave(n->accounts, account_id, clock_mono_ms());
}
