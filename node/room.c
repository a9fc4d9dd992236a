/* Rooms, members and rosters; see room.h. */
#include "room.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "conn.h"
#include "xalloc.h"

struct room *room_find(struct room *rooms, const char *id)
{
    struct room *r;
    HASH_FIND_STR(rooms, id, r);
    return r;
}

struct room *room_open(struct room **rooms, const char *id)
{
    struct room *r = room_find(*rooms, id);
    if (r)
        return r;
    r = xcalloc(1, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    HASH_ADD_STR(*rooms, id, r);
    return r;
}

static void roster_entry_free(struct roster_entry *e)
{
    for (size_t i = 0; i < e->n_conns; i++)
        free(e->conns[i].key);
    free(e->conns);
    free(e->account_id);
    json_decref(e->account);
    free(e);
}

bool room_release(struct room **rooms, struct room *r)
{
    if (r->n_members || r->waiting)
        return false;
    struct roster_entry *e, *tmp;
    HASH_ITER(hh, r->roster, e, tmp)
    {
        HASH_DEL(r->roster, e);
        roster_entry_free(e);
    }
    HASH_DEL(*rooms, r);
    free(r);
    return true;
}

void room_add_member(struct room *r, struct conn *c)
{
    DL_PREPEND2(r->members, c, room_prev, room_next);
    r->n_members++;
}

void room_remove_member(struct room *r, struct conn *c)
{
    DL_DELETE2(r->members, c, room_prev, room_next);
    r->n_members--;
}

void room_add_waiting(struct room *r, struct conn *c)
{
    DL_PREPEND2(r->waiting, c, room_prev, room_next);
}

void room_remove_waiting(struct room *r, struct conn *c)
{
    DL_DELETE2(r->waiting, c, room_prev, room_next);
}

enum roster_change roster_add(struct room *r, const char *key, json_t *account,
                              const char *joined_at)
{
    const char *id = json_string_value(json_object_get(account, "id"));
    if (!id)
        return ROSTER_KNOWN;
    struct roster_entry *e;
    HASH_FIND_STR(r->roster, id, e);
    for (size_t i = 0; e && i < e->n_conns; i++)
        if (!strcmp(e->conns[i].key, key))
            return ROSTER_KNOWN;
    bool first = !e;
    if (first) {
        e = xcalloc(1, sizeof(*e));
        e->account_id = xstrdup(id);
        e->account = json_incref(account);
        HASH_ADD_KEYPTR(hh, r->roster, e->account_id, strlen(e->account_id), e);
    }
    if (e->n_conns == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 2;
        e->conns = xrealloc(e->conns, e->cap * sizeof(*e->conns));
    }
    struct roster_conn *rc = &e->conns[e->n_conns++];
    rc->key = xstrdup(key);
    snprintf(rc->joined_at, sizeof(rc->joined_at), "%s", joined_at);
    return first ? ROSTER_FIRST : ROSTER_ADDED;
}

json_t *roster_remove(struct room *r, const char *key, const char *account_id)
{
    struct roster_entry *e;
    HASH_FIND_STR(r->roster, account_id, e);
    if (!e)
        return NULL;
    for (size_t i = 0; i < e->n_conns; i++) {
        if (strcmp(e->conns[i].key, key) != 0)
            continue;
        free(e->conns[i].key);
        e->conns[i] = e->conns[--e->n_conns];
        if (e->n_conns)
            return NULL;
        json_t *account = json_incref(e->account);
        HASH_DEL(r->roster, e);
        roster_entry_free(e);
        return account;
    }
    return NULL;
}

bool roster_has(const struct room *r, const char *account_id)
{
    struct roster_entry *e;
    HASH_FIND_STR(r->roster, account_id, e);
    return e != NULL;
}

bool roster_has_key(const struct room *r, const char *key)
{
    for (const struct roster_entry *e = r->roster; e; e = e->hh.next)
        for (size_t i = 0; i < e->n_conns; i++)
            if (!strcmp(e->conns[i].key, key))
                return true;
    return false;
}

static const char *earliest_join(const struct roster_entry *e)
{
    const char *at = e->conns[0].joined_at;
    /* ISO-8601 UTC timestamps of one format sort as strings. */
    for (size_t i = 1; i < e->n_conns; i++)
        if (strcmp(e->conns[i].joined_at, at) < 0)
            at = e->conns[i].joined_at;
    return at;
}

json_t *roster_participants(const struct room *r, const char *except_account)
{
    json_t *list = json_array();
    for (const struct roster_entry *e = r->roster; e; e = e->hh.next) {
        if (strcmp(e->account_id, except_account) != 0)
            json_array_append_new(list, protocol_participant(e->account, earliest_join(e)));
    }
    return list;
}
