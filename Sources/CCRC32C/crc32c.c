#include "precis_crc32c.h"
#include <string.h>

#if defined(__x86_64__)

int precis_crc32c_hw_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
static uint32_t crc_u64_run(uint32_t crc, const unsigned char *p, size_t words) {
    uint64_t c = crc;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    return (uint32_t)c;
}

__attribute__((target("sse4.2")))
static uint32_t crc_bytes(uint32_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = __builtin_ia32_crc32qi(crc, p[i]);
    return crc;
}

#define HW_WORD(c, w) __builtin_ia32_crc32di((c), (w))
#define HW_TARGET __attribute__((target("sse4.2")))
#define HW_OK 1

#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>

int precis_crc32c_hw_available(void) { return 1; }

static uint32_t crc_u64_run(uint32_t crc, const unsigned char *p, size_t words) {
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        crc = __crc32cd(crc, w);
    }
    return crc;
}

static uint32_t crc_bytes(uint32_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = __crc32cb(crc, p[i]);
    return crc;
}

#define HW_WORD(c, w) __crc32cd((uint32_t)(c), (w))
#define HW_TARGET
#define HW_OK 1

#else

int precis_crc32c_hw_available(void) { return 0; }
uint32_t precis_crc32c_hw(uint32_t crc, const void *bytes, size_t n) { (void)bytes; (void)n; return crc; }
#define HW_OK 0

#endif

#if HW_OK

// Polynomial arithmetic over GF(2) in CRC-32C's reflected bit order.
#define POLY 0x82F63B78u

// a·b mod P (reflected).
static uint32_t gf_mul(uint32_t a, uint32_t b) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) {
        if (b & 0x80000000u) r ^= a;
        b <<= 1;
        a = (a & 1) ? (a >> 1) ^ POLY : a >> 1;
    }
    return r;
}

// x^(8·n) mod P: multiplies a CRC register by this to move it past n zero bytes.
static uint32_t x_pow_8n(size_t n) {
    uint32_t result = 0x80000000u;     // x^0
    uint32_t sq = 0x00800000u;         // x^8
    while (n) {
        if (n & 1) result = gf_mul(result, sq);
        sq = gf_mul(sq, sq);
        n >>= 1;
    }
    return result;
}

// Three independent streams of BLOCK bytes hide the instruction's 3-cycle latency; their CRCs are
// then combined by moving each past the bytes after it (a multiplication by x^(8·length) mod P).
enum { BLOCK = 8192 };

HW_TARGET
uint32_t precis_crc32c_hw(uint32_t crc, const void *bytes, size_t n) {
    const unsigned char *p = (const unsigned char *)bytes;
    if (n >= 3 * BLOCK) {
        // Computed per call (about a thousand shifts): cheaper than the synchronisation a cache needs.
        const uint32_t shift_block = x_pow_8n(BLOCK), shift_2block = x_pow_8n(2 * BLOCK);
        while (n >= 3 * BLOCK) {
            uint64_t c0 = crc, c1 = 0, c2 = 0;
            for (size_t i = 0; i < BLOCK; i += 8) {
                uint64_t w0, w1, w2;
                memcpy(&w0, p + i, 8);
                memcpy(&w1, p + BLOCK + i, 8);
                memcpy(&w2, p + 2 * BLOCK + i, 8);
                c0 = HW_WORD(c0, w0);
                c1 = HW_WORD(c1, w1);
                c2 = HW_WORD(c2, w2);
            }
            // crc(A‖B‖C) = shift(crcA, |B|+|C|) ⊕ shift(crcB', |C|) ⊕ crcC', where B' and C' start from 0.
            crc = gf_mul((uint32_t)c0, shift_2block) ^ gf_mul((uint32_t)c1, shift_block) ^ (uint32_t)c2;
            p += 3 * BLOCK;
            n -= 3 * BLOCK;
        }
    }
    crc = crc_u64_run(crc, p, n / 8);
    p += n & ~(size_t)7;
    return crc_bytes(crc, p, n & 7);
}

#endif
