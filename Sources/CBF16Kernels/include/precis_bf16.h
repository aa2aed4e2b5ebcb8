// bf16 matrix products with fp32 accumulation: C = alpha * op(A) * op(B) + beta * C.
//
// Two kernels over one packed layout, chosen at run time by the caller (PrecisCore.BF16Gemm):
// - AVX-512-BF16 (`VDPBF16PS`): 6 rows x 64 columns of C in 24 zmm accumulators;
// - AMX (`TDPBF16PS`): 2 x 2 tiles of 16 x 16 fp32 C, A tiles 16 rows x 32 bf16, B tiles 16 pairs x 16 columns.
// Both read the same operands:
// - op(B) [K x N] packed once ("packed weights") as 16-column panels in the VNNI pair layout
//   [N16/16][K32/2][16][2] bf16 (N16 = N rounded up to 16, K32 = K rounded up to 32, zero padding);
// - op(A) [M x K] converted to bf16 rows [M16][K32] (M16 = M rounded up to 16, zero padding), so that
//   row i's pair p (elements 2p, 2p+1) is one 32-bit word, and 16 rows x 32 columns are one A tile.
// Every function with ISA-specific code carries its own target attribute, so the rest of this file
// (CPUID, conversion, packing) runs on any x86-64, and callers use the kernels only after
// precis_bf16_query says the CPU and the OS support them. On other architectures the kernels are
// absent (the query reports nothing) and packing still works.
#ifndef PRECIS_BF16_H
#define PRECIS_BF16_H

#include <stddef.h>
#include <stdint.h>

/// What this CPU and OS offer for bf16 products.
typedef struct {
    int avx512f;       ///< CPUID.7.0:EBX[16]
    int avx512bf16;    ///< CPUID.7.1:EAX[5]
    int amx_tile;      ///< CPUID.7.0:EDX[24]
    int amx_bf16;      ///< CPUID.7.0:EDX[22]
    int os_avx512;     ///< XCR0 has SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled (bits 1,2,5,6,7)
    int os_amx;        ///< XCR0 has XTILECFG and XTILEDATA state enabled (bits 17, 18)
} precis_bf16_cpu;

/// Fills `out` from CPUID and XGETBV (zeros where unsupported or not x86-64).
void precis_bf16_query(precis_bf16_cpu *out);

/// Asks Linux for permission to use the AMX tile data (arch_prctl(ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA)); the permission is process-wide. Returns 0 when granted (or already held),
/// otherwise the errno of the refusal (or ENOSYS off Linux/x86-64).
int precis_bf16_amx_request(void);

/// fp32 -> bf16 with round-to-nearest-even; NaNs stay (quiet) NaNs, infinities stay infinities.
uint16_t precis_bf16_from_f32(float x);
/// bf16 -> fp32 (exact).
float precis_bf16_to_f32(uint16_t x);

/// Rounded dimensions of the packed layouts.
static inline size_t precis_bf16_pad16(size_t x) { return (x + 15) & ~(size_t)15; }
static inline size_t precis_bf16_pad32(size_t x) { return (x + 31) & ~(size_t)31; }

/// Elements (uint16_t) of op(B) [k x n] packed: pad16(n) * pad32(k).
static inline size_t precis_bf16_packed_b_count(size_t k, size_t n) { return precis_bf16_pad16(n) * precis_bf16_pad32(k); }
/// Elements (uint16_t) of op(A) [m x k] converted: pad16(m) * pad32(k).
static inline size_t precis_bf16_rows_a_count(size_t m, size_t k) { return precis_bf16_pad16(m) * precis_bf16_pad32(k); }

/// Packs op(B) [k x n] (op(B)[r][c] = transB ? b[c*ldb + r] : b[r*ldb + c]) into `dst`
/// (precis_bf16_packed_b_count(k, n) elements, padding zeroed). Panels [p0, p1) only, so callers
/// can pack in parallel; p1 <= pad16(n)/16.
void precis_bf16_pack_b(const float *b, size_t ldb, int transB, size_t k, size_t n,
                        uint16_t *dst, size_t p0, size_t p1);

/// Converts op(A) [m x k] (op(A)[r][c] = transA ? a[c*lda + r] : a[r*lda + c]) into rows of
/// `dst` (precis_bf16_rows_a_count(m, k) elements). Rows [r0, r1) of pad16(m), padding rows and
/// columns zeroed.
void precis_bf16_pack_a(const float *a, size_t lda, int transA, size_t m, size_t k,
                        uint16_t *dst, size_t r0, size_t r1);

/// Reads back op(B)[r][c] from a packed B (for tests and round trips).
static inline uint16_t precis_bf16_packed_b_at(const uint16_t *packed, size_t k, size_t r, size_t c) {
    return packed[((c >> 4) * (precis_bf16_pad32(k) >> 1) + (r >> 1)) * 32 + (c & 15) * 2 + (r & 1)];
}

/// C rows [r0, r1) x 16-column panels [p0, p1) of C[m x n] (row stride ldc) =
/// alpha * A * B + beta * C (beta == 0: C is not read, so it may hold NaNs), with A and B packed as
/// above for the same k. AVX-512-BF16 kernel; call only when the CPU has it.
void precis_bf16_gemm_avx512(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                             size_t m, size_t n, size_t k, float alpha, float beta,
                             size_t r0, size_t r1, size_t p0, size_t p1);

/// The same with AMX tiles; r0 must be a multiple of 16. Call only when the CPU has AMX-TILE and
/// AMX-BF16, XCR0 enables the tile state and precis_bf16_amx_request returned 0. Loads the tile
/// configuration on the calling thread and releases the tiles before returning.
void precis_bf16_gemm_amx(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                          size_t m, size_t n, size_t k, float alpha, float beta,
                          size_t r0, size_t r1, size_t p0, size_t p1);

/// The same in plain C (any CPU): exact bf16 products summed in pairs in fp32, as VDPBF16PS forms
/// them; for checking the bf16 path where the CPU has no bf16 instructions (much slower than sgemm).
void precis_bf16_gemm_portable(const uint16_t *a, const uint16_t *b, float *c, size_t ldc,
                               size_t m, size_t n, size_t k, float alpha, float beta,
                               size_t r0, size_t r1, size_t p0, size_t p1);

/// Runs `iterations` x 24 independent VDPBF16PS zmm instructions (24 accumulator chains, no memory
/// operands) and returns a sum of the accumulators (so the loop is not removed): timed by the caller,
/// it measures how many the core issues per second, the ceiling of the AVX-512-BF16 kernel. Call
/// only when the CPU has AVX-512-BF16; returns 0 off x86-64.
float precis_bf16_avx512_issue_loop(uint64_t iterations);

/// C[m x n] (row stride ldc) = alpha * op(A) * op(B) + beta * C from fp32 operands in sgemm's
/// row-major form (op(A)[r][c] = transA ? a[c*lda + r] : a[r*lda + c], op(B) likewise): both are
/// converted into this thread's scratch (kept between calls, grown when a product needs more), then
/// multiplied by the AVX-512-BF16 kernel (`kernel` 0), the AMX kernel (1) or the portable one (2). For products whose
/// operands are both activations (weight gradients), run on whichever compute thread takes them.
/// Returns 0, or ENOMEM when the scratch cannot grow (C is then untouched).
int precis_bf16_sgemm(int kernel, int transA, int transB, size_t m, size_t n, size_t k, float alpha,
                      const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

#endif
