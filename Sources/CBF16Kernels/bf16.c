// bf16 products with fp32 accumulation: see include/precis_bf16.h for the layouts.
#include "precis_bf16.h"

#include <errno.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

// ---------------------------------------------------------------------------------------------
// CPU and OS support

#if defined(__x86_64__)
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    // XGETBV with ECX = 0 (inline, so this file needs no -mxsave); only called when OSXSAVE is set.
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

void precis_bf16_query(precis_bf16_cpu *out) {
    memset(out, 0, sizeof *out);
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return;
    int osxsave = (ecx >> 27) & 1;
    unsigned maxLeaf = __get_cpuid_max(0, 0);
    if (maxLeaf < 7) return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned subleaves = eax;
    out->avx512f = (ebx >> 16) & 1;
    out->amx_bf16 = (edx >> 22) & 1;
    out->amx_tile = (edx >> 24) & 1;
    if (subleaves >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        out->avx512bf16 = (eax >> 5) & 1;
    }
    if (osxsave) {
        uint64_t xcr0 = read_xcr0();
        const uint64_t avx512State = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
        const uint64_t amxState = (1u << 17) | (1u << 18);
        out->os_avx512 = (xcr0 & avx512State) == avx512State;
        out->os_amx = (xcr0 & amxState) == amxState;
    }
#endif
}

int precis_bf16_amx_request(void) {
#if defined(__x86_64__) && defined(__linux__)
    // Linux >= 5.16: the tile data state is off until the process asks for it.
    const long ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bitmask) == 0 && (bitmask & (1ul << XFEATURE_XTILEDATA)))
        return 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return errno ? errno : EPERM;
    return 0;
#else
    return ENOSYS;
#endif
}

// ---------------------------------------------------------------------------------------------
// Conversion and packing (plain C: any CPU)

uint16_t precis_bf16_from_f32(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // NaN: keep it, quiet
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow to infinity is right)
    return (uint16_t)(u >> 16);
}

float precis_bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void pack_b_scalar(const float *b, size_t ldb, int transB, size_t k, size_t n,
                          uint16_t *dst, size_t p0, size_t p1) {
    const size_t k32 = precis_bf16_pad32(k), pairs = k32 >> 1;
    for (size_t p = p0; p < p1; p++) {
        uint16_t *panel = dst + p * pairs * 32;
        const size_t c0 = p * 16, lanes = c0 >= n ? 0 : (n - c0 < 16 ? n - c0 : 16);
        if (lanes < 16) memset(panel, 0, pairs * 32 * sizeof(uint16_t));
        if (transB) {
            // op(B)[r][c] = b[c*ldb + r]: column c of op(B) is a row of b, read contiguously.
            for (size_t l = 0; l < lanes; l++) {
                const float *src = b + (c0 + l) * ldb;
                uint16_t *d = panel + l * 2;
                for (size_t r = 0; r < k; r++) d[(r >> 1) * 32 + (r & 1)] = precis_bf16_from_f32(src[r]);
                for (size_t r = k; r < k32; r++) d[(r >> 1) * 32 + (r & 1)] = 0;
            }
        } else {
            // op(B)[r][c] = b[r*ldb + c]: each row's 16 columns are contiguous.
            for (size_t r = 0; r < k32; r++) {
                uint16_t *d = panel + (r >> 1) * 32 + (r & 1);
                if (r >= k) {
                    for (size_t l = 0; l < 16; l++) d[l * 2] = 0;
                    continue;
                }
                const float *src = b + r * ldb + c0;
                for (size_t l = 0; l < lanes; l++) d[l * 2] = precis_bf16_from_f32(src[l]);
            }
        }
    }
}

static void pack_a_scalar(const float *a, size_t lda, int transA, size_t m, size_t k,
                          uint16_t *dst, size_t r0, size_t r1) {
    const size_t k32 = precis_bf16_pad32(k);
    const size_t live = r1 < m ? r1 : m;
    if (!transA) {
        for (size_t i = r0; i < live; i++) {
            const float *src = a + i * lda;
            uint16_t *d = dst + i * k32;
            for (size_t c = 0; c < k; c++) d[c] = precis_bf16_from_f32(src[c]);
            for (size_t c = k; c < k32; c++) d[c] = 0;
        }
    } else if (r0 < live) {
        // op(A)[i][c] = a[c*lda + i]: transposed through 16 x 32 blocks in L1, so the reads run along
        // rows of a (contiguous over i) and each output row's 32 values are written as one 64-byte line.
        for (size_t i0 = r0; i0 < live; i0 += 16) {
            const size_t ni = live - i0 < 16 ? live - i0 : 16;
            for (size_t c0 = 0; c0 < k32; c0 += 32) {
                uint16_t t[16][32];
                const size_t nc = c0 >= k ? 0 : (k - c0 < 32 ? k - c0 : 32);
                for (size_t c = 0; c < nc; c++) {
                    const float *src = a + (c0 + c) * lda + i0;
                    for (size_t i = 0; i < ni; i++) t[i][c] = precis_bf16_from_f32(src[i]);
                }
                for (size_t i = 0; i < ni; i++) {
                    for (size_t c = nc; c < 32; c++) t[i][c] = 0;
                    memcpy(dst + (i0 + i) * k32 + c0, t[i], sizeof t[i]);
                }
            }
        }
    }
    for (size_t i = live > r0 ? live : r0; i < r1; i++) memset(dst + i * k32, 0, k32 * sizeof(uint16_t));
}

// ---------------------------------------------------------------------------------------------
// Conversion and packing with AVX-512F: the same bits as the scalar code above (round to nearest,
// ties to even, NaN kept and quieted, denormals kept: integer arithmetic on the fp32 bits, not
// VCVTNEPS2BF16, which flushes denormals), 16 values per instruction. Used where the CPU and OS
// have AVX-512F and PRECIS_NO_AVX512 is unset; the scalar code everywhere else. Packing activations
// for every weight-gradient product is on the training step's path, so this is measured speed
// (docs/benchmarks.md, "bf16 training step"), not tidiness.

#if defined(__x86_64__)
#include <stdlib.h>
#define PACK_TARGET __attribute__((target("avx512f")))

// 16 fp32 values -> 16 bf16 values, each in the low half of a 32-bit lane (the high half zero).
static inline __attribute__((always_inline)) PACK_TARGET __m512i bf16_round16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1)));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                 _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

static inline PACK_TARGET __mmask16 first_lanes(size_t count) {
    return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

// Transposes 16 x 16 32-bit elements in registers: afterwards lane j of r[i] is what lane i of r[j]
// was. Two rounds of unpacks within 128-bit lanes (32-, then 64-bit), then two of 128-bit lane shuffles.
static inline __attribute__((always_inline)) PACK_TARGET void transpose16x16_epi32(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);      // per 128-bit lane L: r[i][4L], r[i+1][4L], r[i][4L+1], r[i+1][4L+1]
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);  // elements 4L+2, 4L+3
    }
    for (int g = 0; g < 16; g += 4) {                      // u[g + c], lane L: column 4L + c of rows g..g+3
        r[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        r[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        r[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        r[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        // Lanes of rows 0-3 and 4-7 (then 8-11 and 12-15) for columns c, 4+c, 8+c, 12+c.
        const __m512i v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
        const __m512i v2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88), v3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
        t[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        t[8 + c] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
        t[4 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        t[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

// `count` values of `src` -> 16-value groups of `d` up to `width` (a multiple of 16), zero beyond `count`.
static PACK_TARGET void row_avx512(const float *src, size_t count, size_t width, uint16_t *d) {
    for (size_t c = 0; c < width; c += 16) {
        const __mmask16 m = first_lanes(c < count ? count - c : 0);
        const __m512i v = bf16_round16(_mm512_maskz_loadu_ps(m, src + c));
        _mm256_storeu_si256((__m256i *)(d + c), _mm512_cvtepi32_epi16(v));
    }
}

static PACK_TARGET void pack_a_avx512(const float *a, size_t lda, int transA, size_t m, size_t k,
                                      uint16_t *dst, size_t r0, size_t r1) {
    const size_t k32 = precis_bf16_pad32(k);
    const size_t live = r1 < m ? r1 : m;
    if (!transA) {
        for (size_t i = r0; i < live; i++) row_avx512(a + i * lda, k, k32, dst + i * k32);
    } else if (r0 < live) {
        // op(A)[i][c] = a[c*lda + i]: 16 rows of op(A) at a time. Rows c and c+1 of a give, lane by
        // lane, the pair (op(A)[i][c], op(A)[i][c+1]) as one 32-bit word; 16 such vectors (32 values
        // of c) transposed in registers are the 16 rows' next 32 values, one 64-byte store each.
        for (size_t i0 = r0; i0 < live; i0 += 16) {
            const size_t ni = live - i0 < 16 ? live - i0 : 16;
            const __mmask16 mi = first_lanes(ni);
            for (size_t c0 = 0; c0 < k32; c0 += 32) {
                __m512i v[16];
                for (size_t q = 0; q < 16; q++) {
                    const size_t c = c0 + 2 * q;
                    const __m512i even = bf16_round16(_mm512_maskz_loadu_ps(c < k ? mi : 0, a + c * lda + i0));
                    const __m512i odd = bf16_round16(_mm512_maskz_loadu_ps(c + 1 < k ? mi : 0, a + (c + 1) * lda + i0));
                    v[q] = _mm512_or_si512(even, _mm512_slli_epi32(odd, 16));
                }
                transpose16x16_epi32(v);
                for (size_t i = 0; i < ni; i++) _mm512_storeu_si512((void *)(dst + (i0 + i) * k32 + c0), v[i]);
            }
        }
    }
    for (size_t i = live > r0 ? live : r0; i < r1; i++) memset(dst + i * k32, 0, k32 * sizeof(uint16_t));
}

static PACK_TARGET void pack_b_avx512(const float *b, size_t ldb, int transB, size_t k, size_t n,
                                      uint16_t *dst, size_t p0, size_t p1) {
    const size_t k32 = precis_bf16_pad32(k), pairs = k32 >> 1;
    for (size_t p = p0; p < p1; p++) {
        uint32_t *panel = (uint32_t *)(dst + p * pairs * 32);  // [pairs][16 lanes] of (even row | odd row << 16)
        const size_t c0 = p * 16, lanes = c0 >= n ? 0 : (n - c0 < 16 ? n - c0 : 16);
        if (!transB) {
            // op(B)[r][c] = b[r*ldb + c]: rows r and r+1 give one 64-byte line of the panel.
            const __mmask16 ml = first_lanes(lanes);
            for (size_t q = 0; q < pairs; q++) {
                const size_t r = 2 * q;
                const __m512i even = bf16_round16(_mm512_maskz_loadu_ps(r < k ? ml : 0, b + r * ldb + c0));
                const __m512i odd = bf16_round16(_mm512_maskz_loadu_ps(r + 1 < k ? ml : 0, b + (r + 1) * ldb + c0));
                _mm512_storeu_si512((void *)(panel + q * 16), _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)));
            }
        } else {
            // op(B)[r][c] = b[c*ldb + r]: column c is a row of b; 32 of its values are 16 (even | odd)
            // pairs, converted at once for each of the 16 lanes, then transposed in registers so that
            // each pair index's 16 lanes are one 64-byte line of the panel.
            for (size_t q0 = 0; q0 < pairs; q0 += 16) {
                __m512i v[16];
                const size_t r0 = 2 * q0;
                const size_t left = r0 < k ? k - r0 : 0;
                const __mmask16 m0 = first_lanes(left), m1 = first_lanes(left > 16 ? left - 16 : 0);
                for (size_t l = 0; l < 16; l++) {
                    const float *src = b + (c0 + l) * ldb + r0;
                    const int live = l < lanes;
                    const __m256i lo = _mm512_cvtepi32_epi16(bf16_round16(_mm512_maskz_loadu_ps(live ? m0 : 0, src)));
                    const __m256i hi = _mm512_cvtepi32_epi16(bf16_round16(_mm512_maskz_loadu_ps(live ? m1 : 0, src + 16)));
                    v[l] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                }
                transpose16x16_epi32(v);
                for (size_t q = 0; q < 16; q++) _mm512_storeu_si512((void *)(panel + (q0 + q) * 16), v[q]);
            }
        }
    }
}

// Whether the AVX-512F packers may run: CPUID and XCR0, and PRECIS_NO_AVX512 unset (read once; a
// race between threads computes the same answer twice).
static int pack_simd(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        precis_bf16_cpu q;
        precis_bf16_query(&q);
        v = q.avx512f && q.os_avx512 && getenv("PRECIS_NO_AVX512") == NULL;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

void precis_bf16_pack_b(const float *b, size_t ldb, int transB, size_t k, size_t n,
                        uint16_t *dst, size_t p0, size_t p1) {
#if defined(__x86_64__)
    if (pack_simd()) { pack_b_avx512(b, ldb, transB, k, n, dst, p0, p1); return; }
#endif
    pack_b_scalar(b, ldb, transB, k, n, dst, p0, p1);
}

void precis_bf16_pack_a(const float *a, size_t lda, int transA, size_t m, size_t k,
                        uint16_t *dst, size_t r0, size_t r1) {
#if defined(__x86_64__)
    if (pack_simd()) { pack_a_avx512(a, lda, transA, m, k, dst, r0, r1); return; }
#endif
    pack_a_scalar(a, lda, transA, m, k, dst, r0, r1);
}

// ---------------------------------------------------------------------------------------------
// AVX-512-BF16 kernel

#if defined(__x86_64__)
#define AVX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define MR 6
#define NP 4

// C[rows x 16*panels] (the last panel `lastMask` columns wide) = alpha * A * B + beta * C.
// `rows` and `panels` are constants at every call site, so the accumulators live in registers.
static inline __attribute__((always_inline)) AVX_TARGET void avx_block(
    const uint16_t *a, size_t k32, const uint16_t *b, size_t panelStride, float *c, size_t ldc,
    const int rows, const int panels, __mmask16 lastMask, float alpha, float beta) {
    __m512 acc[MR][NP];
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) acc[r][p] = _mm512_setzero_ps();
    const uint32_t *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = (const uint32_t *)(a + (r < rows ? r : 0) * k32);
    const size_t pairs = k32 >> 1;
    for (size_t q = 0; q < pairs; q++) {
        __m512bh bv[NP];
        for (int p = 0; p < NP; p++)
            if (p < panels) bv[p] = (__m512bh)_mm512_loadu_si512((const void *)(b + p * panelStride + q * 32));
        for (int r = 0; r < MR; r++) {
            if (r >= rows) continue;
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)ar[r][q]);
            for (int p = 0; p < NP; p++)
                if (p < panels) acc[r][p] = _mm512_dpbf16_ps(acc[r][p], av, bv[p]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
        if (r >= rows) continue;
        float *cr = c + r * ldc;
        for (int p = 0; p < NP; p++) {
            if (p >= panels) continue;
            __mmask16 mk = p == panels - 1 ? lastMask : (__mmask16)0xffff;
            __m512 v = _mm512_mul_ps(acc[r][p], va);
            if (beta != 0) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, cr + p * 16), vb, v);
            _mm512_mask_storeu_ps(cr + p * 16, mk, v);
        }
    }
}

#define AVX_CASE(R, P) avx_block(a, k32, b, panelStride, c, ldc, R, P, lastMask, alpha, beta)
#define AVX_ROWS(R)                 \
    switch (panels) {               \
    case 4: AVX_CASE(R, 4); break;  \
    case 3: AVX_CASE(R, 3); break;  \
    case 2: AVX_CASE(R, 2); break;  \
    default: AVX_CASE(R, 1); break; \
    }

static AVX_TARGET void avx_dispatch(const uint16_t *a, size_t k32, const uint16_t *b, size_t panelStride,
                                    float *c, size_t ldc, int rows, int panels, __mmask16 lastMask,
                                    float alpha, float beta) {
    switch (rows) {
    case 6: AVX_ROWS(6); break;
    case 5: AVX_ROWS(5); break;
    case 4: AVX_ROWS(4); break;
    case 3: AVX_ROWS(3); break;
    case 2: AVX_ROWS(2); break;
    default: AVX_ROWS(1); break;
    }
}

AVX_TARGET void precis_bf16_gemm_avx512(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                                        size_t m, size_t n, size_t k, float alpha, float beta,
                                        size_t r0, size_t r1, size_t p0, size_t p1) {
    const size_t k32 = precis_bf16_pad32(k), panelStride = (k32 >> 1) * 32;
    const size_t allPanels = precis_bf16_pad16(n) >> 4;
    if (r1 > m) r1 = m;
    if (p1 > allPanels) p1 = allPanels;
    // Panel groups outside, rows inside: one group's panels of B (64 columns x K) stay in L2 while
    // every block of rows streams past them.
    for (size_t p = p0; p < p1; p += NP) {
        const int panels = (int)(p1 - p < NP ? p1 - p : NP);
        const size_t lastCol = (p + panels) * 16 > n ? n : (p + panels) * 16;
        const size_t lastWidth = lastCol - (p + panels - 1) * 16;
        const __mmask16 lastMask = (__mmask16)((1u << lastWidth) - 1);
        for (size_t i = r0; i < r1; i += MR) {
            const int rows = (int)(r1 - i < MR ? r1 - i : MR);
            avx_dispatch(a + i * k32, k32, b + p * panelStride, panelStride, c + i * ldc + p * 16, ldc,
                         rows, panels, lastMask, alpha, beta);
        }
    }
}

// 24 chains: more than the instruction's latency times its issue rate on the cores measured, so
// the loop is bound by issue, not by latency (the kernel above keeps the same 24 accumulators).
AVX_TARGET float precis_bf16_avx512_issue_loop(uint64_t iterations) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3c003c00);
    for (uint64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));  // a may change: the products stay in the loop
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

// ---------------------------------------------------------------------------------------------
// AMX kernel

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))

typedef struct __attribute__((packed, aligned(64))) {
    uint8_t palette;
    uint8_t startRow;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// Tiles 0-3: C (16 rows x 16 fp32); 4, 5: A (16 rows x 32 bf16); 6, 7: B (16 pairs x 16 columns x 2).
static AMX_TARGET void amx_configure(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

// Merges one 16 x 16 accumulator tile (in `t`) into C: `rows` x `cols` of it are inside C.
static inline AMX_TARGET void amx_merge(const float *t, float *c, size_t ldc, size_t rows, size_t cols,
                                        float alpha, float beta) {
    const __mmask16 mk = (__mmask16)((1u << cols) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (size_t r = 0; r < rows; r++) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(t + r * 16), va);
        if (beta != 0) v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, c + r * ldc), vb, v);
        _mm512_mask_storeu_ps(c + r * ldc, mk, v);
    }
}

// One accumulator tile of the 2 x 2 block: tile T holds C rows i + 16*DR, columns (p + DC)*16.
// `direct` tiles (alpha 1, beta 0 or 1, all 16 x 16 inside C) start from C itself (beta 1) or zero
// and are stored straight into C; the others go through `out` and amx_merge.
#define AMX_START(T)                                                                   \
    do {                                                                               \
        if (direct[T] && beta != 0) _tile_loadd(T, cTile[T], strideC);                 \
        else _tile_zero(T);                                                            \
    } while (0)
#define AMX_FINISH(T)                                                                  \
    do {                                                                               \
        if (!live[T]) break;                                                           \
        if (direct[T]) { _tile_stored(T, cTile[T], strideC); break; }                  \
        _tile_stored(T, out[T], 64);                                                   \
        amx_merge(out[T], cTile[T], ldc, rowsIn[T], colsIn[T], alpha, beta);           \
    } while (0)

AMX_TARGET void precis_bf16_gemm_amx(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                                     size_t m, size_t n, size_t k, float alpha, float beta,
                                     size_t r0, size_t r1, size_t p0, size_t p1) {
    const size_t k32 = precis_bf16_pad32(k), panelStride = (k32 >> 1) * 32, strideA = k32 * 2, strideC = ldc * 4;
    const size_t allPanels = precis_bf16_pad16(n) >> 4;
    if (r1 > m) r1 = m;
    if (p1 > allPanels) p1 = allPanels;
    if (r0 >= r1 || p0 >= p1) return;
    amx_configure();
    // With alpha 1 and beta 0 or 1, whole tiles need no fp32 pass over C: the accumulator starts as
    // C (beta 1: C + A·B summed in the tile, C first) or zero and is stored into C.
    const int plain = alpha == 1 && (beta == 0 || beta == 1);
    float out[4][256] __attribute__((aligned(64)));
    for (size_t p = p0; p < p1; p += 2) {
        const int two = p + 1 < p1;
        const uint16_t *b0 = b + p * panelStride, *b1 = b0 + panelStride;
        for (size_t i = r0; i < r1; i += 32) {
            const int down = i + 16 < r1;
            const uint16_t *a0 = a + i * k32, *a1 = a0 + 16 * k32;
            int live[4], direct[4];
            size_t rowsIn[4], colsIn[4];
            float *cTile[4];
            for (int t = 0; t < 4; t++) {
                const int dr = t >> 1, dc = t & 1;
                const size_t row = i + 16 * dr, col = (p + dc) * 16;
                live[t] = !((dc && !two) || (dr && !down)) && col < n;
                rowsIn[t] = live[t] ? (r1 - row < 16 ? r1 - row : 16) : 0;
                colsIn[t] = live[t] ? (n - col < 16 ? n - col : 16) : 0;
                direct[t] = live[t] && plain && rowsIn[t] == 16 && colsIn[t] == 16;
                cTile[t] = c + row * ldc + col;
            }
            AMX_START(0);
            AMX_START(1);
            AMX_START(2);
            AMX_START(3);
            for (size_t kk = 0; kk < k32; kk += 32) {
                _tile_loadd(4, a0 + kk, strideA);
                _tile_loadd(6, b0 + kk * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                if (two) {
                    _tile_loadd(7, b1 + kk * 16, 64);
                    _tile_dpbf16ps(1, 4, 7);
                }
                if (down) {
                    _tile_loadd(5, a1 + kk, strideA);
                    _tile_dpbf16ps(2, 5, 6);
                    if (two) _tile_dpbf16ps(3, 5, 7);
                }
            }
            AMX_FINISH(0);
            AMX_FINISH(1);
            AMX_FINISH(2);
            AMX_FINISH(3);
        }
    }
    _tile_release();
}

#else

void precis_bf16_gemm_avx512(const uint16_t *a, const uint16_t *b, float *c, size_t ldc, size_t m, size_t n,
                             size_t k, float alpha, float beta, size_t r0, size_t r1, size_t p0, size_t p1) {
    (void)a; (void)b; (void)c; (void)ldc; (void)m; (void)n; (void)k; (void)alpha; (void)beta;
    (void)r0; (void)r1; (void)p0; (void)p1;
}
float precis_bf16_avx512_issue_loop(uint64_t iterations) { (void)iterations; return 0; }
void precis_bf16_gemm_amx(const uint16_t *a, const uint16_t *b, float *c, size_t ldc, size_t m, size_t n,
                          size_t k, float alpha, float beta, size_t r0, size_t r1, size_t p0, size_t p1) {
    (void)a; (void)b; (void)c; (void)ldc; (void)m; (void)n; (void)k; (void)alpha; (void)beta;
    (void)r0; (void)r1; (void)p0; (void)p1;
}

#endif

// ---------------------------------------------------------------------------------------------
// Portable kernel: the same operands and the same arithmetic (exact bf16 products, fp32 sums of
// pairs as VDPBF16PS forms them) in plain C, for CPUs without bf16 instructions. Slower than fp32
// sgemm: it exists so that the bf16 path (packing, lanes, the training step) can be checked on any
// CPU, and is used only when asked for (PrecisCore's BF16Support, PRECIS_BF16_EMULATE=1).

void precis_bf16_gemm_portable(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                               size_t m, size_t n, size_t k, float alpha, float beta,
                               size_t r0, size_t r1, size_t p0, size_t p1) {
    const size_t k32 = precis_bf16_pad32(k), pairs = k32 >> 1;
    const size_t allPanels = precis_bf16_pad16(n) >> 4;
    if (r1 > m) r1 = m;
    if (p1 > allPanels) p1 = allPanels;
    for (size_t p = p0; p < p1; p++) {
        const uint16_t *panel = b + p * pairs * 32;
        const size_t c0 = p * 16, width = n - c0 < 16 ? n - c0 : 16;
        for (size_t i = r0; i < r1; i++) {
            const uint16_t *row = a + i * k32;
            float acc[16] = {0};
            for (size_t q = 0; q < pairs; q++) {
                const float a0 = precis_bf16_to_f32(row[2 * q]), a1 = precis_bf16_to_f32(row[2 * q + 1]);
                const uint16_t *bp = panel + q * 32;
                for (size_t l = 0; l < 16; l++)
                    acc[l] += a0 * precis_bf16_to_f32(bp[2 * l]) + a1 * precis_bf16_to_f32(bp[2 * l + 1]);
            }
            float *out = c + i * ldc + c0;
            for (size_t l = 0; l < width; l++) out[l] = beta == 0 ? alpha * acc[l] : alpha * acc[l] + beta * out[l];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Products from fp32 operands, converted into per-thread scratch

#include <stdlib.h>

// Each compute thread keeps its own conversion buffers for the life of the thread (the compute
// pool's threads live as long as the process); they grow to the largest product the thread ran.
static _Thread_local uint16_t *scratch_a, *scratch_b;
static _Thread_local size_t scratch_a_cap, scratch_b_cap;

static uint16_t *scratch_grow(uint16_t **p, size_t *cap, size_t need) {
    if (need <= *cap && *p) return *p;
    size_t bytes = (need * sizeof(uint16_t) + 63) & ~(size_t)63;
    uint16_t *q = aligned_alloc(64, bytes ? bytes : 64);
    if (!q) return NULL;
    free(*p);
    *p = q;
    *cap = need;
    return q;
}

int precis_bf16_sgemm(int kernel, int transA, int transB, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    if (m == 0 || n == 0) return 0;
    uint16_t *pa = scratch_grow(&scratch_a, &scratch_a_cap, precis_bf16_rows_a_count(m, k));
    if (!pa) return ENOMEM;
    uint16_t *pb = scratch_grow(&scratch_b, &scratch_b_cap, precis_bf16_packed_b_count(k, n));
    if (!pb) return ENOMEM;
    const size_t panels = precis_bf16_pad16(n) / 16;
    precis_bf16_pack_a(a, lda, transA, m, k, pa, 0, precis_bf16_pad16(m));
    precis_bf16_pack_b(b, ldb, transB, k, n, pb, 0, panels);
    switch (kernel) {
    case 1: precis_bf16_gemm_amx(pa, pb, c, ldc, m, n, k, alpha, beta, 0, m, 0, panels); break;
    case 2: precis_bf16_gemm_portable(pa, pb, c, ldc, m, n, k, alpha, beta, 0, m, 0, panels); break;
    default: precis_bf16_gemm_avx512(pa, pb, c, ldc, m, n, k, alpha, beta, 0, m, 0, panels); break;
    }
    return 0;
}
