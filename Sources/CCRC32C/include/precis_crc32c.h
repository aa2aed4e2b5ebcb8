// CRC-32C (Castagnoli) with the CPU's instruction: SSE4.2 `crc32` on x86-64, the CRC32 extension
// on AArch64. Swift cannot emit these instructions itself, so this one small C file does; PrecisWire
// calls it only when `precis_crc32c_hw_available()` says the CPU has them, and otherwise uses its
// table-driven code (the same checksum).
#ifndef PRECIS_CRC32C_H
#define PRECIS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU computes CRC-32C in hardware.
int precis_crc32c_hw_available(void);

/// Continues a CRC-32C over `n` bytes: `crc` is the running (already inverted) register value, as
/// in `~seed` at the start; the caller inverts the result at the end.
uint32_t precis_crc32c_hw(uint32_t crc, const void *bytes, size_t n);

#endif
