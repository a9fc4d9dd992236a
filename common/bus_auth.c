/* Authenticating the Redis bus's messages; see bus_auth.h. */
#include "bus_auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define DOMAIN "signal-bus-1\n"
#define MAC_BYTES 32

struct bus_key {
    EVP_MAC_CTX *ctx; /* HMAC-SHA256 with the secret, started again for each message */
    char id[WIRE_KEY_ID_LEN + 1];
};

/* Starts a MAC with k's secret; false when OpenSSL fails. */
static bool mac_start(struct bus_key *k)
{
    return EVP_MAC_init(k->ctx, NULL, 0, NULL) == 1;
}

static void mac_add(struct bus_key *k, const void *p, size_t len)
{
    EVP_MAC_update(k->ctx, p, len);
}

/* Ends the MAC into out as lower case hex, NUL-terminated; false when
 * OpenSSL fails. */
static bool mac_end(struct bus_key *k, char out[WIRE_MAC_LEN + 1])
{
    unsigned char md[MAC_BYTES];
    size_t len = 0;
    if (EVP_MAC_final(k->ctx, md, &len, sizeof(md)) != 1 || len != MAC_BYTES)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < MAC_BYTES; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[WIRE_MAC_LEN] = '\0';
    return true;
}

struct bus_key *bus_key_new(const char *secret, size_t len)
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx, (const unsigned char *)secret, len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    struct bus_key *k = xcalloc(1, sizeof(*k));
    k->ctx = ctx;
    static const char label[] = "signal-node cluster key id";
    char mac[WIRE_MAC_LEN + 1];
    bool ok = mac_start(k);
    if (ok) {
        mac_add(k, label, sizeof(label) - 1);
        ok = mac_end(k, mac);
    }
    if (!ok) {
        bus_key_free(k);
        return NULL;
    }
    memcpy(k->id, mac, WIRE_KEY_ID_LEN);
    return k;
}

void bus_key_free(struct bus_key *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->ctx);
    free(k);
}

const char *bus_key_id(const struct bus_key *k)
{
    return k->id;
}

/* Starts the MAC of a message on channel with the part every MAC shares:
 * the domain, the channel and the head up to the MAC. */
static bool mac_head(struct bus_key *k, const char *channel, size_t channel_len, const char *head,
                     size_t head_len)
{
    if (!mac_start(k))
        return false;
    mac_add(k, DOMAIN, strlen(DOMAIN));
    mac_add(k, channel, channel_len);
    mac_add(k, "\n", 1);
    mac_add(k, head, head_len);
    return true;
}

size_t bus_sign(struct bus_key *k, char *out, size_t size, const char *channel, const char *signer,
                uint64_t seq, long long stamp_ms, const struct wire_str *parts, size_t n)
{
    int head =
        snprintf(out, size, "A|%s|%s|%llu|%lld|", k->id, signer, (unsigned long long)seq, stamp_ms);
    if (head < 0 || (size_t)head + WIRE_MAC_LEN + 2 > size ||
        !mac_head(k, channel, strlen(channel), out, (size_t)head))
        return 0;
    for (size_t i = 0; i < n; i++)
        mac_add(k, parts[i].p, parts[i].len);
    if (!mac_end(k, out + head))
        return 0;
    out[head + WIRE_MAC_LEN] = '|';
    out[head + WIRE_MAC_LEN + 1] = '\0';
    return (size_t)head + WIRE_MAC_LEN + 1;
}

bool bus_verify(struct bus_key *k, const char *channel, size_t channel_len,
                const struct wire_msg *m)
{
    char want[WIRE_MAC_LEN + 1];
    if (!m->authenticated || m->auth.mac.len != WIRE_MAC_LEN ||
        !mac_head(k, channel, channel_len, m->auth.head.p, m->auth.head.len))
        return false;
    for (size_t i = 0; i < 2; i++)
        mac_add(k, m->covered[i].p, m->covered[i].len);
    return mac_end(k, want) && CRYPTO_memcmp(want, m->auth.mac.p, WIRE_MAC_LEN) == 0;
}

bool bus_fresh(long long stamp_ms, long long now_ms)
{
    return stamp_ms >= now_ms - BUS_MAX_AGE_MS && stamp_ms <= now_ms + BUS_MAX_AGE_MS;
}

static void set_bit(struct replay_window *w, uint64_t seq, bool on)
{
    uint64_t slot = seq % BUS_REPLAY_WINDOW, bit = 1ull << (slot % 64);
    if (on)
        w->seen[slot / 64] |= bit;
    else
        w->seen[slot / 64] &= ~bit;
}

static bool get_bit(const struct replay_window *w, uint64_t seq)
{
    uint64_t slot = seq % BUS_REPLAY_WINDOW;
    return w->seen[slot / 64] >> (slot % 64) & 1;
}

bool replay_accept(struct replay_window *w, uint64_t seq)
{
    if (seq == 0)
        return false;
    if (seq > w->top) {
        /* The slots between the old top and seq now stand for numbers not
         * seen yet. */
        if (seq - w->top >= BUS_REPLAY_WINDOW)
            memset(w->seen, 0, sizeof(w->seen));
        else
            for (uint64_t s = w->top + 1; s < seq; s++)
                set_bit(w, s, false);
        set_bit(w, seq, true);
        w->top = seq;
        return true;
    }
    if (w->top - seq >= BUS_REPLAY_WINDOW || get_bit(w, seq))
        return false;
    set_bit(w, seq, true);
    return true;
}
