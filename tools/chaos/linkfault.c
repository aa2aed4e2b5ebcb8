/*
 * linkfault: a netem substitute for kernels without sch_netem (tools/chaos/chaos.sh).
 *
 * It takes the packets an iptables rule sends to NFQUEUE queue N (the rules chaos.sh adds in a
 * namespace: OUTPUT -o LINK and INPUT -i LINK, so both directions of one host's link) and gives
 * each its verdict later:
 *   - loss:       a fraction of the packets is dropped (NF_DROP at once);
 *   - delay:      every other packet is held `delay` ms, plus a uniform jitter in [-jitter, +jitter]
 *                 ms, then accepted; verdicts are given in release order, not arrival order, so a
 *                 jitter larger than the gap between two packets reorders them on the wire;
 *   - reorder:    a fraction of the packets skips the delay (accepted at once, overtaking those held),
 *                 as netem's `reorder` does;
 *   - duplicate:  a fraction of the IPv4 packets is also sent a second time (a copy through a raw
 *                 socket, as it was received).
 * The queue is opened fail-open (a full queue lets packets through rather than dropping them, so
 * the loss is the configured one) and chaos.sh's rules use --queue-bypass (no linkfault running:
 * packets pass).
 * It asks for real-time scheduling (SCHED_FIFO; as root): on a busy machine an ordinary process wakes
 * up milliseconds late, which would add to every delay (and to the lossless, undelayed path too).
 * On SIGTERM / SIGINT it accepts every packet it holds, prints its counters on stdout as one
 * line (`linkfault: received N dropped N duplicated N reordered N held-max N delay-mean-ms X`)
 * and exits 0.
 *
 * usage: linkfault --queue N [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT]
 *                  [--duplicate PCT] [--seed S]
 * Build: cc -O2 -Wall -o linkfault linkfault.c -lnetfilter_queue  (Debian: libnetfilter-queue-dev)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 65536

struct held { uint64_t release_ns; uint32_t id; };

static struct held heap[MAX_HELD];
static size_t held_count = 0;
static volatile sig_atomic_t stop_flag = 0;

static double opt_delay = 0, opt_jitter = 0, opt_loss = 0, opt_reorder = 0, opt_dup = 0;
static uint64_t rng_state = 88172645463325252ULL;
static int raw_fd = -1;

static unsigned long long n_received = 0, n_dropped = 0, n_dup = 0, n_reordered = 0, n_held_max = 0;
static double delay_sum_ms = 0; static unsigned long long delay_n = 0;
/* The release time of the last packet given a verdict (to count overtakings). */
static uint32_t last_released_id = 0; static int any_released = 0;

static uint64_t xorshift(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}
/* Uniform in [0, 1). */
static double uniform(void) { return (double)(xorshift() >> 11) / 9007199254740992.0; }

static uint64_t now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* A binary min-heap on release time. */
static void heap_push(struct held h) {
    size_t i = held_count++;
    heap[i] = h;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (heap[p].release_ns <= heap[i].release_ns) break;
        struct held t = heap[p]; heap[p] = heap[i]; heap[i] = t; i = p;
    }
}
static struct held heap_pop(void) {
    struct held top = heap[0];
    heap[0] = heap[--held_count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < held_count && heap[l].release_ns < heap[m].release_ns) m = l;
        if (r < held_count && heap[r].release_ns < heap[m].release_ns) m = r;
        if (m == i) break;
        struct held t = heap[m]; heap[m] = heap[i]; heap[i] = t; i = m;
    }
    return top;
}

/* Packet ids grow by one per packet of a queue: a verdict for a smaller id than the previous one
   puts a packet on the wire after one that arrived later. */
static void accept_packet(struct nfq_q_handle *qh, uint32_t id) {
    if (any_released && id < last_released_id) n_reordered++;
    if (!any_released || id > last_released_id) last_released_id = id;
    any_released = 1;
    nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
}

static void duplicate(unsigned char *data, int len) {
    if (raw_fd < 0 || len < (int)sizeof(struct iphdr)) return;
    struct iphdr *ip = (struct iphdr *)data;
    if (ip->version != 4) return;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = ip->daddr };
    if (sendto(raw_fd, data, (size_t)len, 0, (struct sockaddr *)&to, sizeof to) == len) n_dup++;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *ctx) {
    (void)msg; (void)ctx;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    n_received++;
    if (opt_loss > 0 && uniform() * 100.0 < opt_loss) {
        n_dropped++;
        nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
        return 0;
    }
    if (opt_dup > 0 && uniform() * 100.0 < opt_dup) {
        unsigned char *data; int len = nfq_get_payload(nfa, &data);
        if (len > 0) duplicate(data, len);
    }
    double ms = opt_delay;
    if (opt_jitter > 0) ms += (uniform() * 2.0 - 1.0) * opt_jitter;
    if (ms < 0) ms = 0;
    if ((opt_reorder > 0 && uniform() * 100.0 < opt_reorder) || ms == 0 || held_count >= MAX_HELD) {
        accept_packet(qh, id);
        delay_n++;
        return 0;
    }
    delay_sum_ms += ms; delay_n++;
    heap_push((struct held){ now_ns() + (uint64_t)(ms * 1e6), id });
    if (held_count > n_held_max) n_held_max = held_count;
    return 0;
}

static void on_signal(int s) { (void)s; stop_flag = 1; }

static double number(const char *flag, const char *v, double lo, double hi) {
    char *end; errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "linkfault: %s %s: expected a number in [%g, %g]\n", flag, v, lo, hi);
        exit(1);
    }
    return x;
}

int main(int argc, char **argv) {
    int queue = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) { fprintf(stderr, "linkfault: %s needs a value\n", a); return 1; }
        const char *v = argv[++i];
        if (!strcmp(a, "--queue")) queue = (int)number(a, v, 0, 65535);
        else if (!strcmp(a, "--delay")) opt_delay = number(a, v, 0, 60000);
        else if (!strcmp(a, "--jitter")) opt_jitter = number(a, v, 0, 60000);
        else if (!strcmp(a, "--loss")) opt_loss = number(a, v, 0, 100);
        else if (!strcmp(a, "--reorder")) opt_reorder = number(a, v, 0, 100);
        else if (!strcmp(a, "--duplicate")) opt_dup = number(a, v, 0, 100);
        else if (!strcmp(a, "--seed")) rng_state = (uint64_t)number(a, v, 1, 4e18) * 2654435761ULL | 1;
        else { fprintf(stderr, "linkfault: unknown option %s\n", a); return 1; }
    }
    if (queue < 0) {
        fprintf(stderr, "usage: linkfault --queue N [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT] [--duplicate PCT] [--seed S]\n");
        return 1;
    }
    struct nfq_handle *h = nfq_open();
    if (!h) { perror("linkfault: nfq_open"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, &on_packet, NULL);
    if (!qh) { fprintf(stderr, "linkfault: cannot bind NFQUEUE %d: %s\n", queue, strerror(errno)); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_PACKET, opt_dup > 0 ? 0xffff : 0) < 0) { perror("linkfault: nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, MAX_HELD);
    nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
    if (opt_dup > 0) {
        raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
        if (raw_fd < 0) perror("linkfault: raw socket (no duplicates)");
    }
    struct sched_param sp = { .sched_priority = 10 };
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) perror("linkfault: SCHED_FIFO (delays may run late on a busy machine)");
    int fd = nfq_fd(h);
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "linkfault: queue %d: delay %g ms, jitter %g ms, loss %g%%, reorder %g%%, duplicate %g%%\n",
            queue, opt_delay, opt_jitter, opt_loss, opt_reorder, opt_dup);
    static char buf[1 << 17] __attribute__((aligned));
    while (!stop_flag) {
        // Wait for a packet or the next release, to the nanosecond (poll's milliseconds would round a
        // 0.1 ms delay up to a whole one whenever no other packet comes first), at most 100 ms.
        uint64_t wait_ns = 100000000ULL;
        if (held_count > 0) {
            uint64_t now = now_ns();
            wait_ns = heap[0].release_ns <= now ? 0 : heap[0].release_ns - now;
            if (wait_ns > 100000000ULL) wait_ns = 100000000ULL;
        }
        struct timespec timeout = { .tv_sec = (time_t)(wait_ns / 1000000000ULL), .tv_nsec = (long)(wait_ns % 1000000000ULL) };
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = ppoll(&p, 1, &timeout, NULL);
        if (r < 0 && errno != EINTR) { perror("linkfault: ppoll"); break; }
        if (r > 0 && (p.revents & POLLIN)) {
            for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) {
                    /* ENOBUFS: the kernel dropped queue messages (fail-open lets packets pass); go on. */
                    if (errno == ENOBUFS) continue;
                    break;
                }
                nfq_handle_packet(h, buf, (int)n);
            }
        }
        uint64_t now = now_ns();
        while (held_count > 0 && heap[0].release_ns <= now) accept_packet(qh, heap_pop().id);
    }
    while (held_count > 0) accept_packet(qh, heap_pop().id);
    printf("linkfault: received %llu dropped %llu duplicated %llu reordered %llu held-max %llu delay-mean-ms %.1f\n",
           n_received, n_dropped, n_dup, n_reordered, n_held_max, delay_n ? delay_sum_ms / (double)delay_n : 0.0);
    fflush(stdout);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
