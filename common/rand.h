/* The process's one source of randomness: the kernel's CSPRNG through
 * getrandom(2), for secrets, ids and jitter alike, so that no two processes
 * draw the same numbers (rand() unseeded does exactly that).
 *
 * Failure policy: none is returned. getrandom(2) only fails on a kernel
 * without it (before Linux 3.17); then the process stops with a message, as
 * on running out of memory (xalloc.h), since a secret or an id made of
 * anything else could be guessed. Before the kernel's pool is first seeded,
 * early at boot, a call waits for it. */
#ifndef SIGNAL_RAND_H
#define SIGNAL_RAND_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n random bytes. */
void rand_bytes(void *buf, size_t n);
/* Returns a random number, uniform over [0, 2^32). */
uint32_t rand_u32(void);

#endif
