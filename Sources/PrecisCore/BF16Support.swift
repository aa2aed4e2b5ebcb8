import CBF16Kernels
import Foundation

/// A bf16 matrix-product kernel (`BF16Gemm`): AMX tiles (`TDPBF16PS`), AVX-512-BF16
/// (`VDPBF16PS`), or the portable C kernel with the same arithmetic, which runs anywhere but
/// slower than fp32 and is used only when `PRECIS_BF16_EMULATE=1` asks for it (to check the bf16
/// path on a CPU without bf16 instructions).
public enum BF16Kernel: String, Sendable, CaseIterable {
    case amx = "AMX"
    case avx512bf16 = "AVX512-BF16"
    case portable = "portable"
}

/// What this CPU and OS offer for bf16 products, from CPUID, XCR0 and (for AMX) Linux's
/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, and the kernels that may therefore run.
public struct BF16Support: Sendable, Equatable, CustomStringConvertible {
    public var avx512f: Bool
    public var avx512bf16: Bool
    public var amxTile: Bool
    public var amxBF16: Bool
    /// XCR0 enables the opmask and ZMM register state (the OS saves it across context switches).
    public var osAVX512: Bool
    /// XCR0 enables the tile configuration and tile data state.
    public var osAMX: Bool
    /// Linux granted this process the tile data (nil: not asked, because the CPU or XCR0 lacks AMX).
    public var amxPermission: Bool?

    public init(avx512f: Bool, avx512bf16: Bool, amxTile: Bool, amxBF16: Bool, osAVX512: Bool, osAMX: Bool, amxPermission: Bool?) {
        self.avx512f = avx512f; self.avx512bf16 = avx512bf16; self.amxTile = amxTile; self.amxBF16 = amxBF16
        self.osAVX512 = osAVX512; self.osAMX = osAMX; self.amxPermission = amxPermission
    }

    /// Read from this CPU; asks Linux for the tile data only when CPUID and XCR0 say AMX is there.
    public static func query() -> BF16Support {
        var q = precis_bf16_cpu()
        precis_bf16_query(&q)
        var s = BF16Support(avx512f: q.avx512f != 0, avx512bf16: q.avx512bf16 != 0, amxTile: q.amx_tile != 0,
                            amxBF16: q.amx_bf16 != 0, osAVX512: q.os_avx512 != 0, osAMX: q.os_amx != 0, amxPermission: nil)
        if s.amxTile && s.amxBF16 && s.osAMX && s.avx512f && s.osAVX512 {
            s.amxPermission = precis_bf16_amx_request() == 0
        }
        return s
    }

    /// This process's answer, read once. `PRECIS_NO_AMX=1` leaves AMX out of `kernels` (to compare
    /// the two kernels, or to rule AMX out); `PRECIS_NO_AVX512=1` leaves both out, as it does for
    /// every AVX-512 kernel.
    public static let current: BF16Support = query()

    /// Whether each kernel may run here: its CPUID flags, the OS's XCR0 state and, for AMX, the
    /// kernel's permission.
    public func supports(_ kernel: BF16Kernel) -> Bool {
        let avx = avx512f && avx512bf16 && osAVX512
        switch kernel {
        case .avx512bf16: return avx
        case .amx: return avx512f && osAVX512 && amxTile && amxBF16 && osAMX && amxPermission == true
        case .portable: return true
        }
    }

    /// The kernels that run here, best first (AMX, then AVX-512-BF16), after the environment's
    /// opt-outs; then the portable kernel, only when `PRECIS_BF16_EMULATE=1` asks for it.
    public var kernels: [BF16Kernel] {
        let env = ProcessInfo.processInfo.environment
        let emulated: [BF16Kernel] = env["PRECIS_BF16_EMULATE"] == "1" ? [.portable] : []
        if env["PRECIS_NO_AVX512"] != nil { return emulated }
        return BF16Kernel.allCases.filter { $0 != .portable && supports($0) && !($0 == .amx && env["PRECIS_NO_AMX"] != nil) }
            + emulated
    }

    /// Why no kernel runs here, naming the CPU flags (as /proc/cpuinfo spells them) that are missing;
    /// nil when one does.
    public var unavailableReason: String? {
        if !kernels.isEmpty { return nil }
        if ProcessInfo.processInfo.environment["PRECIS_NO_AVX512"] != nil {
            return "bf16 matrix products are off: PRECIS_NO_AVX512 is set"
        }
        var missing: [String] = []
        if !avx512f { missing.append("avx512f") }
        if !avx512bf16 { missing.append("avx512_bf16") }
        if avx512f && !osAVX512 { missing.append("the OS's AVX-512 register state (XCR0)") }
        return "bf16 matrix products need a CPU with avx512_bf16 (AVX-512-BF16) or amx_tile + amx_bf16 (AMX); this one lacks "
            + (missing.isEmpty ? "them" : missing.joined(separator: ", "))
            + (amxTile ? "" : " and amx_tile/amx_bf16")
    }

    public var description: String {
        let flags = [("avx512f", avx512f), ("avx512_bf16", avx512bf16), ("amx_tile", amxTile), ("amx_bf16", amxBF16)]
            .map { "\($0.0) \($0.1 ? "yes" : "no")" }.joined(separator: ", ")
        let perm = amxPermission.map { $0 ? "granted" : "refused" } ?? "not asked"
        return "\(flags); XCR0 AVX-512 \(osAVX512 ? "on" : "off"), tiles \(osAMX ? "on" : "off"); tile data permission \(perm)"
    }
}
