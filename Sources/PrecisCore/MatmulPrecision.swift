/// The precision of a model's matrix products (Trainer's `bf16` flag).
///
/// - `fp32`: every product is fp32 (OpenBLAS sgemm and Precis's own AVX-512 kernels).
/// - `bf16`: the products of the linear layers and the LM head (forward, input gradient and weight
///   gradient) take bf16-rounded operands and accumulate in fp32 (`BF16Gemm`), as
///   `torch.autocast("cpu", dtype=torch.bfloat16)` runs `linear`; master weights, optimizer state,
///   LayerNorm, softmax, the loss and gradient accumulation stay fp32. Attention's per-head score and
///   context products stay fp32 (a small share of a step's work).
public enum MatmulPrecision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16
}
