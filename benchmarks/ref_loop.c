/* Plain C reference loop: the physical-limit yardstick for warpsniff.
 *
 * The least work an RTP analyser can do per packet, written as a straight
 * loop with no abstraction: mmap a classic pcap, walk the records, decode
 * Ethernet (+ 802.1Q/QinQ tags) / IPv4 / UDP, check the RTP header, find the
 * stream in an open-addressing hash table keyed by (src, dst, sport, dport,
 * SSRC) and update RFC 3550 state: A.1 sequence tracking with probation,
 * A.3 expected/lost, A.8 interarrival jitter (the RFC's integer form).
 * IPv4 only, no fragments, no SIP, no RTCP, no pcapng: anything else is
 * skipped. It prints one JSON line.
 *
 *     gcc -O2 -o ref_loop benchmarks/ref_loop.c && ./ref_loop capture.pcap
 *
 * benchmarks/run.py compiles it at run time into a temporary directory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIN_SEQUENTIAL 2
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
#define SEQ_MOD (1u << 16)
#define SIP_PORT 5060

typedef struct stream {
    uint64_t k0, k1;       /* key: src | dst << 32, sport | dport << 16 | ssrc << 32; k0 == 0 means empty */
    uint16_t max_seq;      /* A.1 */
    uint16_t probation;
    uint32_t cycles;
    uint32_t base_seq;
    uint32_t bad_seq;
    uint32_t received;
    uint32_t packets;      /* every packet attributed to the stream */
    uint32_t clock;        /* Hz, 0 = no jitter */
    int32_t transit;       /* A.8 */
    uint32_t jitter;       /* A.8: 16 x jitter in timestamp units */
    uint32_t max_jitter;
    uint8_t valid;
    uint8_t have_transit;
} stream;

static stream *table;
static uint64_t mask, used;

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static inline uint64_t hash2(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b * 0xc2b2ae3d27d4eb4fULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 29);
}

static void grow(void)
{
    uint64_t old_size = mask + 1, size = old_size * 2;
    stream *old = table;
    table = calloc(size, sizeof *table);
    if (!table) { perror("calloc"); exit(1); }
    mask = size - 1;
    for (uint64_t i = 0; i < old_size; i++) {
        if (!old[i].k0) continue;
        uint64_t pos = hash2(old[i].k0, old[i].k1) & mask;
        while (table[pos].k0) pos = (pos + 1) & mask;
        table[pos] = old[i];
    }
    free(old);
}

static inline stream *lookup(uint64_t k0, uint64_t k1)
{
    uint64_t pos = hash2(k0, k1) & mask;
    for (;;) {
        stream *s = &table[pos];
        if (s->k0 == k0 && s->k1 == k1) return s;
        if (!s->k0) break;
        pos = (pos + 1) & mask;
    }
    if ((used + 1) * 2 > mask + 1) {
        grow();
        return lookup(k0, k1);
    }
    stream *s = &table[pos];
    memset(s, 0, sizeof *s);
    s->k0 = k0;
    s->k1 = k1;
    used++;
    return s;
}

/* RFC 3550 A.1 */
static inline void init_seq(stream *s, uint16_t seq)
{
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = SEQ_MOD + 1;
    s->cycles = 0;
    s->received = 0;
}

static inline int update_seq(stream *s, uint16_t seq)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    if (s->probation) {
        /* a source is valid once MIN_SEQUENTIAL packets arrive in sequence */
        if (seq == (uint16_t)(s->max_seq + 1)) {
            s->probation--;
            s->max_seq = seq;
            if (s->probation == 0) {
                init_seq(s, seq);
                s->received++;
                s->valid = 1;
                return 1;
            }
        } else {
            s->probation = MIN_SEQUENTIAL - 1;
            s->max_seq = seq;
        }
        return 0;
    }
    if (udelta < MAX_DROPOUT) {
        if (seq < s->max_seq) s->cycles += SEQ_MOD; /* wrapped */
        s->max_seq = seq;
    } else if (udelta <= SEQ_MOD - MAX_MISORDER) {
        if (seq == s->bad_seq) {
            init_seq(s, seq); /* two sequential packets after a jump: the source restarted */
        } else {
            s->bad_seq = (seq + 1) & (SEQ_MOD - 1);
            return 0;
        }
    } /* else a duplicate or reordered packet */
    s->received++;
    return 1;
}

static uint32_t clock_of(unsigned pt)
{
    switch (pt) {
    case 0: case 3: case 4: case 5: case 7: case 8: case 9: case 12: case 15: case 18: return 8000;
    case 6: return 16000;
    case 10: case 11: return 44100;
    case 16: return 11025;
    case 17: return 22050;
    case 25: case 26: case 28: case 31: case 32: case 33: case 34: return 90000;
    default: return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s capture.pcap\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);

    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    fstat(fd, &st);
    size_t len = (size_t)st.st_size;
    const uint8_t *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    madvise((void *)m, len, MADV_SEQUENTIAL);
    if (len < 24 || (le32(m) != 0xa1b2c3d4u && le32(m) != 0xa1b23c4du) || le32(m + 20) != 1) {
        fprintf(stderr, "%s: not a little-endian Ethernet classic pcap\n", argv[1]);
        return 1;
    }
    const int64_t frac_ns = le32(m) == 0xa1b23c4du ? 1 : 1000;

    mask = 4095;
    table = calloc(mask + 1, sizeof *table);
    uint64_t frames = 0, rtp = 0, skipped = 0;
    int64_t origin_ns = -1;

    size_t off = 24;
    while (off + 16 <= len) {
        const uint8_t *h = m + off;
        uint32_t caplen = le32(h + 8);
        if (off + 16 + caplen > len) break;
        const uint8_t *p = h + 16, *end = p + caplen;
        off += 16 + (size_t)caplen;
        frames++;

        if (caplen < 14) { skipped++; continue; }
        uint16_t et = be16(p + 12);
        p += 14;
        while ((et == 0x8100 || et == 0x88a8) && p + 4 <= end) {
            et = be16(p + 2);
            p += 4;
        }
        if (et != 0x0800 || p + 20 > end || (p[0] >> 4) != 4) { skipped++; continue; }
        unsigned ihl = (p[0] & 15) * 4u;
        if (p[9] != 17 || ihl < 20 || (be16(p + 6) & 0x3fff) || p + ihl + 8 > end) { skipped++; continue; }
        uint32_t src = le32(p + 12), dst = le32(p + 16);
        const uint8_t *u = p + ihl;
        uint16_t sport = be16(u), dport = be16(u + 2);
        uint32_t ulen = be16(u + 4);
        if (ulen < 8 || u + ulen > end) { skipped++; continue; }
        const uint8_t *r = u + 8;
        uint32_t n = ulen - 8;
        if (sport == SIP_PORT || dport == SIP_PORT || sport < 1024 || dport < 1024) { skipped++; continue; }
        if (n < 12 || (r[0] & 0xc0) != 0x80 || (r[1] >= 200 && r[1] <= 207)) { skipped++; continue; }
        unsigned pt = r[1] & 0x7f;
        uint32_t hl = 12 + 4u * (r[0] & 15);
        if (hl > n) { skipped++; continue; }
        rtp++;

        int64_t ts_ns = (int64_t)le32(h) * 1000000000 + (int64_t)le32(h + 4) * frac_ns;
        if (origin_ns < 0) origin_ns = ts_ns;
        uint32_t ssrc = be32(r + 8);
        uint64_t k0 = (uint64_t)src | (uint64_t)dst << 32;
        uint64_t k1 = (uint64_t)sport | (uint64_t)dport << 16 | (uint64_t)ssrc << 32;
        if (!k0) k0 = 1; /* 0.0.0.0 -> 0.0.0.0 would look empty */
        stream *s = lookup(k0, k1);
        uint16_t seq = be16(r + 2);
        if (!s->packets) {
            init_seq(s, seq);
            s->max_seq = (uint16_t)(seq - 1);
            s->probation = MIN_SEQUENTIAL;
        }
        s->packets++;
        update_seq(s, seq);

        /* A.8: arrival in timestamp units; jitter kept x16 as in the RFC */
        uint32_t clock = clock_of(pt);
        if (clock) {
            if (clock != s->clock) {
                s->clock = clock;
                s->have_transit = 0;
            }
            uint32_t arrival = (uint32_t)((ts_ns - origin_ns) * clock / 1000000000);
            int32_t transit = (int32_t)(arrival - be32(r + 4));
            if (s->have_transit) {
                int32_t d = transit - s->transit;
                if (d < 0) d = -d;
                s->jitter += (uint32_t)d - ((s->jitter + 8) >> 4);
                if (s->jitter > s->max_jitter) s->max_jitter = s->jitter;
            }
            s->transit = transit;
            s->have_transit = 1;
        }
    }

    uint64_t streams = 0, stream_packets = 0, received = 0;
    int64_t expected = 0, lost = 0;
    double max_jitter_ms = 0, sum_jitter_ms = 0;
    for (uint64_t i = 0; i <= mask; i++) {
        stream *s = &table[i];
        if (!s->k0 || !s->valid) continue;
        streams++;
        stream_packets += s->packets;
        received += s->received;
        int64_t exp = (int64_t)s->cycles + s->max_seq - (int64_t)s->base_seq + 1; /* A.3 */
        expected += exp;
        lost += exp - (int64_t)s->received;
        if (s->clock) {
            double j = (s->jitter >> 4) * 1000.0 / s->clock, mj = (s->max_jitter >> 4) * 1000.0 / s->clock;
            sum_jitter_ms += j;
            if (mj > max_jitter_ms) max_jitter_ms = mj;
        }
    }
    munmap((void *)m, len);
    close(fd);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
    printf("{\"tool\": \"ref_loop\", \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"frames\": %llu, \"rtp_packets\": %llu, "
           "\"skipped\": %llu, \"candidates\": %llu, \"streams\": %llu, \"stream_packets\": %llu, "
           "\"received\": %llu, \"expected\": %lld, \"lost\": %lld, \"mean_final_jitter_ms\": %.4f, "
           "\"max_jitter_ms\": %.4f, \"stream_bytes\": %zu}\n",
           secs, cpu, (unsigned long long)frames, (unsigned long long)rtp, (unsigned long long)skipped,
           (unsigned long long)used, (unsigned long long)streams, (unsigned long long)stream_packets,
           (unsigned long long)received, (long long)expected, (long long)lost,
           streams ? sum_jitter_ms / streams : 0.0, max_jitter_ms, sizeof(stream));
    free(table);
    return 0;
}
