/* A faster sender than tcpreplay for the live-capture benchmark: sends every
 * frame of a classic pcap out of an interface as fast as the kernel takes
 * them, in batches (sendmmsg on an AF_PACKET socket, qdisc bypassed).
 * tcpreplay makes one system call per packet, which caps it near 0.45 Mpps
 * on a veth here; batching is what it takes to offer 1 Mpps and more.
 * No pacing: timestamps are ignored, as with tcpreplay --topspeed.
 *
 *     gcc -O2 -o blast benchmarks/blast.c && ./blast IFACE capture.pcap [loops]
 *
 * Prints one line: "sent N packets in S seconds". Needs CAP_NET_RAW.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH 512

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IFACE capture.pcap [loops]\n", argv[0]);
        return 2;
    }
    int loops = argc > 3 ? atoi(argv[3]) : 1;
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[2]);
        return 2;
    }
    const uint8_t *map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED || st.st_size < 24 || *(const uint32_t *)map != 0xa1b2c3d4u) {
        fprintf(stderr, "%s: not a little-endian microsecond pcap\n", argv[2]);
        return 2;
    }
    int s = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, never receives */
    if (s < 0) {
        perror("socket");
        return 2;
    }
    int one = 1;
    setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    int sndbuf = 64 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1])};
    if (!ll.sll_ifindex || bind(s, (struct sockaddr *)&ll, sizeof ll) < 0) {
        fprintf(stderr, "%s: no such interface\n", argv[1]);
        return 2;
    }
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    uint64_t sent = 0;
    double t0 = now();
    for (int loop = 0; loop < loops; loop++) {
        size_t pos = 24;
        while (pos + 16 <= (size_t)st.st_size) {
            int n = 0;
            while (n < BATCH && pos + 16 <= (size_t)st.st_size) {
                uint32_t caplen;
                memcpy(&caplen, map + pos + 8, 4);
                if (pos + 16 + caplen > (size_t)st.st_size) break;
                iov[n].iov_base = (void *)(map + pos + 16);
                iov[n].iov_len = caplen;
                memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
                msgs[n].msg_hdr.msg_iov = &iov[n];
                msgs[n].msg_hdr.msg_iovlen = 1;
                n++;
                pos += 16 + caplen;
            }
            if (!n) break;
            for (int done = 0; done < n;) {
                int r = sendmmsg(s, msgs + done, (unsigned)(n - done), 0);
                if (r < 0) { /* ENOBUFS: the device queue is full; let it drain */
                    usleep(50);
                    continue;
                }
                done += r;
                sent += (uint64_t)r;
            }
        }
    }
    double t = now() - t0;
    printf("sent %llu packets in %.6f seconds\n", (unsigned long long)sent, t);
    return 0;
}
