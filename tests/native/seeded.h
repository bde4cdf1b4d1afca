/* A seeded pseudo-random sequence (xorshift64*) for the test harnesses:
 * the same seed gives the same inputs on every machine. */
#ifndef SEEDED_H
#define SEEDED_H

#include <stdint.h>

static uint64_t rng_state;

static void rng_seed(uint64_t seed) { rng_state = seed * 0x9E3779B97F4A7C15ULL | 1; }

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* 0 .. n-1 (0 when n is 0) */
static uint32_t below(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }

#endif
