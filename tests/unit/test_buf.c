/* Unit tests of the one growable buffer (common/buf.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"

Test(buf, starts_as_an_empty_string)
{
    struct buf b;
    buf_init(&b, 0);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    buf_free(&b);
    cr_assert_null(b.data);
}

Test(buf, appends_bytes_and_text)
{
    struct buf b;
    buf_init(&b, 4);
    buf_append(&b, "ab", 2);
    buf_appendf(&b, "-%d-%s", 42, "x");
    buf_append(&b, "\0z", 2);
    cr_assert_eq(b.len, 9);
    cr_assert(memcmp(b.data, "ab-42-x\0z", 10) == 0);
    buf_free(&b);
}

Test(buf, appendf_longer_than_the_free_space)
{
    struct buf b;
    buf_init(&b, 8);
    char big[1000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_appendf(&b, "<%s>", big);
    cr_assert_eq(b.len, sizeof(big) + 1);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[b.len - 1], '>');
    cr_assert_eq(b.data[b.len], '\0');
    buf_free(&b);
}

Test(buf, grows_past_its_first_size)
{
    struct buf b;
    buf_init(&b, 1);
    for (int i = 0; i < 10000; i++)
        buf_appendf(&b, "%04d,", i % 10000);
    cr_assert_eq(b.len, 50000);
    cr_assert_eq(strlen(b.data), b.len);
    cr_assert(strncmp(b.data + 5 * 9999, "9999,", 5) == 0);
    buf_free(&b);
}

Test(buf, reserve_keeps_pointers_valid)
{
    struct buf b;
    buf_init(&b, 0);
    buf_reserve(&b, 100);
    char *data = b.data;
    for (int i = 0; i < 100; i++)
        buf_append(&b, "x", 1);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.len, 100);
    buf_free(&b);
}

Test(buf, extend_leaves_room_to_fill)
{
    struct buf b;
    buf_init(&b, 0);
    memcpy(buf_extend(&b, 3), "abc", 3);
    buf_append(&b, "d", 1);
    cr_assert_str_eq(b.data, "abcd");
    buf_free(&b);
}
