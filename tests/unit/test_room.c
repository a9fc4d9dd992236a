/* Unit tests of rooms and their roster (node/room.c): one participant per
 * account however many connections it has, in any order of joins and
 * leaves. */
#include <criterion/criterion.h>
#include <jansson.h>

#include "room.h"

static json_t *account(const char *id)
{
    return json_pack("{ss ss sn sn s{} sn}", "id", id, "name", id, "nick", "profile", "updatedAt",
                     "x");
}

static const char *at = "2026-11-29T15:00:00.000Z";

Test(roster, one_participant_per_account)
{
    struct room *rooms = NULL;
    struct room *r = room_open(&rooms, "room-1");
    json_t *a = account("alice"), *b = account("bob");
    cr_assert_eq(roster_add(r, "n1:1:1", a, at), ROSTER_FIRST);
    cr_assert_eq(roster_add(r, "n2:1:7", a, at), ROSTER_ADDED, "alice's second connection");
    cr_assert_eq(roster_add(r, "n2:1:7", a, at), ROSTER_KNOWN, "the same key again");
    cr_assert_eq(roster_add(r, "n1:1:2", b, at), ROSTER_FIRST);
    cr_assert(roster_has(r, "alice") && roster_has(r, "bob") && !roster_has(r, "carol"));
    cr_assert(roster_has_key(r, "n2:1:7") && !roster_has_key(r, "n2:1:8"));

    json_t *p = roster_participants(r, "bob");
    cr_assert_eq(json_array_size(p), 1, "bob sees alice once, not twice");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(p, 0), "accountId")),
                     "alice");
    json_decref(p);

    cr_assert_null(roster_remove(r, "n1:1:1", "alice"), "alice is still on n2");
    cr_assert(roster_has(r, "alice"));
    cr_assert_null(roster_remove(r, "n9:9:9", "alice"), "an unknown key changes nothing");
    json_t *gone = roster_remove(r, "n2:1:7", "alice");
    cr_assert_not_null(gone, "her last connection: she leaves");
    cr_assert_str_eq(json_string_value(json_object_get(gone, "id")), "alice");
    json_decref(gone);
    cr_assert_not(roster_has(r, "alice"));
    cr_assert_null(roster_remove(r, "n2:1:7", "alice"), "a second leave of the same key");

    json_decref(a);
    json_decref(b);
    cr_assert(room_release(&rooms, r), "no member, no waiting connection: released");
    cr_assert_null(rooms);
}

Test(roster, participants_are_every_other_account)
{
    struct room *rooms = NULL;
    struct room *r = room_open(&rooms, "room-2");
    cr_assert_eq(room_open(&rooms, "room-2"), r, "opening it again finds it");
    const char *ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        json_t *acc = account(ids[i]);
        char key[16];
        snprintf(key, sizeof(key), "n:1:%d", i);
        cr_assert_eq(roster_add(r, key, acc, at), ROSTER_FIRST);
        json_decref(acc);
    }
    json_t *p = roster_participants(r, "c");
    cr_assert_eq(json_array_size(p), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(p, i);
        cr_assert_str_neq(json_string_value(json_object_get(e, "accountId")), "c");
        cr_assert_str_eq(json_string_value(json_object_get(e, "joinedAt")), at);
    }
    json_decref(p);
    cr_assert(room_release(&rooms, r), "the roster is freed with the room");
}
