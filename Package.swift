// swift-tools-version: 6.1
// Precis: a parameter-server cluster that fine-tunes seq2seq summarization transformers on CPUs.
import PackageDescription

// Numerics-heavy targets are always optimised for speed; bounds checks stay on in debug builds.
let numerics: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

// The vector kernels' source (Sources/PrecisAVX512) is compiled twice, once for skylake-avx512 and
// once for haswell (AVX2 + FMA; Sources/PrecisAVX2 links to the same files); code only calls into
// them after a runtime check of the CPU (PrecisCore.CPUFeatures.vectorKernels), so the binaries
// still run on any x86-64.
#if arch(x86_64)
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512", "-Ounchecked"])]
let avx2: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell", "-Ounchecked"])]
#else
let avx512: [SwiftSetting] = []
let avx2: [SwiftSetting] = []
#endif

// Test targets whose own code only drives the product (processes, sockets, files, HTTP) are compiled
// without optimisation even in release builds: CI builds the tests in release so that the code
// under test is the shipped code, and optimising these drivers only adds build time (measured:
// about a third of their compile time). Targets with heavy loops of their own (references in
// Double, every-scalar sweeps) stay optimised: they run beside the cluster tests on CI's 2 cores.
let driverTests: [SwiftSetting] = [.unsafeFlags(["-Onone"], .when(configuration: .release))]

let package = Package(
    name: "Precis",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "precis", targets: ["precis"]),
        .executable(name: "precis-coordinator", targets: ["precis-coordinator"]),
        .executable(name: "precis-ps", targets: ["precis-ps"]),
        .executable(name: "precis-worker", targets: ["precis-worker"]),
        .library(name: "PrecisCore", targets: ["PrecisCore"]),
        .library(name: "PrecisModels", targets: ["PrecisModels"]),
        .library(name: "PrecisMetrics", targets: ["PrecisMetrics"]),
        .library(name: "PrecisText", targets: ["PrecisText"]),
        .library(name: "PrecisData", targets: ["PrecisData"]),
        .library(name: "PrecisEval", targets: ["PrecisEval"]),
        .library(name: "PrecisWire", targets: ["PrecisWire"]),
        .library(name: "PrecisTrain", targets: ["PrecisTrain"]),
        .library(name: "PrecisHub", targets: ["PrecisHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // Observability: the Prometheus registry and exposition, and the HTTP listener that serves it
        // (no traits: swift-configuration and full Foundation are not needed; see docs/benchmarks.md
        // for the build time they add).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shims over system libraries (Debian: libopenblas-dev, liblz4-dev, libzmq3-dev).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // No pkgConfig for libzmq: its .pc adds -isystem flags SwiftPM rejects.
        .systemLibrary(name: "CZMQ", providers: [.apt(["libzmq3-dev"])]),
        // libcurl's easy interface, for the hub's HTTP(S) client (typed wrappers of its variadic setters).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // CRC-32C with the CPU's instruction (SSE4.2 / AArch64 CRC32), chosen at run time.
        .target(name: "CCRC32C", cSettings: [.unsafeFlags(["-O3"])]),
        // The CPU's spin-wait hint, for the compute pool's waits (`Parallel`).
        .target(name: "CSpin"),
        // bf16 matrix products (AVX-512-BF16 and AMX kernels, fp32 -> bf16 packing, CPUID/XCR0/arch_prctl
        // checks). Each ISA-specific function carries its own target attribute, so the rest of the file
        // runs on any x86-64 and PrecisCore.BF16Support chooses a kernel at run time.
        .target(name: "CBF16Kernels", cSettings: [.unsafeFlags(["-O3"])]),

        // ISA-specific kernels (see `avx512` and `avx2` above).
        // Portable bodies of the elementwise kernels, inlined into (and compiled for the target of)
        // PrecisCore, PrecisAVX512 and PrecisAVX2.
        .target(name: "PrecisKernels", swiftSettings: numerics),
        .target(name: "PrecisAVX512", dependencies: ["PrecisKernels"], swiftSettings: avx512),
        .target(name: "PrecisAVX2", dependencies: ["PrecisKernels"], swiftSettings: avx2),
        // Numerics core: buffers, BLAS, kernels, optimizer, safetensors.
        .target(name: "PrecisCore", dependencies: ["COpenBLAS", "CSpin", "CBF16Kernels", "PrecisKernels", "PrecisAVX512", "PrecisAVX2"], swiftSettings: numerics),
        // Models: configs, flat parameter layout, BART, registry, HF model folders.
        .target(name: "PrecisModels", dependencies: ["PrecisCore"], swiftSettings: numerics),

        // Text: tokenizers (Hugging Face tokenizer.json, byte-level BPE), training a tokenizer.
        .target(name: "PrecisText", swiftSettings: numerics),

        // Data: loading JSON Lines / JSON / CSV datasets, the tokenized cache, samplers, collation.
        .target(name: "PrecisData", dependencies: ["PrecisCore", "PrecisModels", "PrecisText"], swiftSettings: numerics),
        // Evaluation: summarising with a model folder, loss + generation + ROUGE reports.
        .target(name: "PrecisEval", dependencies: ["PrecisCore", "PrecisModels", "PrecisData", "PrecisText", "PrecisMetrics"]),

        // Training: the YAML config (Seq2SeqTrainingArguments names) and the in-process training loop.
        .target(name: "PrecisTrain", dependencies: ["PrecisCore", "PrecisModels", "PrecisData", "PrecisText", "PrecisWire", "PrecisHub",
                                                    .product(name: "Yams", package: "Yams")]),

        // Wire protocol: ZeroMQ sockets, the data-message header, LZ4 shard codecs (fp32, bf16 with error feedback).
        .target(name: "PrecisWire", dependencies: ["CZMQ", "CLZ4", "CCRC32C"], swiftSettings: numerics),

        // Observability: each role's Prometheus metrics (atomic counters and gauges the roles update
        // where they already compute their figures) and the HTTP listener serving `/metrics` (and the
        // coordinator's extra pages). Only the role modules depend on it, never PrecisWire,
        // PrecisTrain or PrecisCore (tools/fuzz/build.sh links those by hand).
        .target(name: "PrecisObservability", dependencies: [
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The three cluster roles. Each depends on the wire protocol and the shared libraries, never on
        // another role.
        .target(name: "PrecisCoordinator", dependencies: ["PrecisWire", "PrecisTrain", "PrecisCore", "PrecisModels", "PrecisData",
                                                          "PrecisText", "PrecisHub", "PrecisEval", "PrecisObservability"]),
        .target(name: "PrecisServer", dependencies: ["PrecisWire", "PrecisCore", "PrecisObservability"], swiftSettings: numerics),
        .target(name: "PrecisWorker", dependencies: ["PrecisWire", "PrecisTrain", "PrecisCore", "PrecisModels", "PrecisData", "PrecisEval",
                                                     "PrecisObservability"]),

        // Hub upload: the Hugging Face Hub HTTP protocol and a plain-directory hub, model cards.
        .target(name: "PrecisHub", dependencies: ["PrecisCore", "CCurl"]),

        // Starting, watching and stopping role processes (here with posix_spawn, elsewhere over ssh),
        // pid files and RUN_DIR/cluster.json; what `precis train`, `precis cluster` and `precis bench
        // cluster` run. Never depends on a role module.
        .target(name: "PrecisLauncher", dependencies: ["PrecisWire", "PrecisTrain", "PrecisCore"]),

        // Metrics: ROUGE exactly as Google's rouge-score computes it.
        .target(name: "PrecisMetrics", swiftSettings: numerics),

        // Benchmarks: training steps, the step's GEMM shapes, generation and the wire codecs, with the
        // timing helpers they share; shapes and FLOPs come from the model (`MatrixProductDescribing`).
        .target(name: "PrecisBench", dependencies: ["PrecisCore", "PrecisModels", "PrecisWire"]),

        // The user CLI (thin).
        .executableTarget(name: "precis", dependencies: [
            "PrecisCore", "PrecisModels", "PrecisMetrics", "PrecisText", "PrecisData", "PrecisEval", "PrecisTrain",
            "PrecisWire", "PrecisHub", "PrecisBench", "PrecisLauncher",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Thin executables over the role modules.
        .executableTarget(name: "precis-coordinator", dependencies: [
            "PrecisCoordinator", "PrecisCore", "PrecisTrain", "PrecisWire", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "precis-ps", dependencies: [
            "PrecisServer", "PrecisCore", "PrecisWire", "PrecisObservability", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "precis-worker", dependencies: [
            "PrecisWorker", "PrecisCore", "PrecisWire", "PrecisObservability", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // What the test targets share: the repository's root, the bundled SAMSum splits, temporary folders.
        .target(name: "PrecisTestSupport", path: "Tests/PrecisTestSupport"),
        .testTarget(name: "PrecisCoreTests", dependencies: ["PrecisCore", "PrecisKernels", "PrecisAVX512", "PrecisAVX2", "PrecisTestSupport"]),
        .testTarget(name: "PrecisModelsTests", dependencies: ["PrecisModels", "PrecisCore", "PrecisTestSupport"]),
        .testTarget(name: "PrecisMetricsTests", dependencies: ["PrecisMetrics", "PrecisTestSupport"]),
        .testTarget(name: "PrecisTextTests", dependencies: ["PrecisText"]),
        .testTarget(name: "PrecisTrainTests", dependencies: ["PrecisTrain", "PrecisData", "PrecisModels", "PrecisCore", "PrecisText", "PrecisWire", "PrecisTestSupport"], swiftSettings: driverTests),
        .testTarget(name: "PrecisWireTests", dependencies: ["PrecisWire", "PrecisCore", "CLZ4"]),
        .testTarget(name: "PrecisDataTests", dependencies: ["PrecisData", "PrecisModels", "PrecisCore", "PrecisText", "PrecisTestSupport"], swiftSettings: driverTests),
        // "precis": the download tests run the built executable against the loopback hub.
        .testTarget(name: "PrecisHubTests", dependencies: ["PrecisHub", "PrecisCore", "precis", "PrecisTestSupport"], swiftSettings: driverTests),
        .testTarget(name: "PrecisCoordinatorTests", dependencies: ["PrecisCoordinator", "PrecisWire", "PrecisTrain", "PrecisCore"], swiftSettings: driverTests),
        .testTarget(name: "PrecisBenchTests", dependencies: ["PrecisBench", "PrecisModels", "PrecisCore", "PrecisWire"]),
        // Real child processes (shell scripts) started, watched and stopped; a stand-in for ssh.
        .testTarget(name: "PrecisLauncherTests", dependencies: ["PrecisLauncher", "PrecisTrain", "PrecisWire"], swiftSettings: driverTests),
        .testTarget(name: "PrecisWorkerTests", dependencies: ["PrecisWorker", "PrecisWire", "PrecisCore"], swiftSettings: driverTests),
        .testTarget(name: "PrecisObservabilityTests", dependencies: ["PrecisObservability", "PrecisHub"], swiftSettings: driverTests),
        .testTarget(name: "PrecisServerTests", dependencies: ["PrecisServer", "PrecisWire", "PrecisCore"], swiftSettings: driverTests),
        .testTarget(name: "PrecisEvalTests", dependencies: ["PrecisEval", "PrecisModels", "PrecisData", "PrecisCore"], swiftSettings: driverTests),
        // Real coordinator, server and worker processes over real sockets.
        .testTarget(name: "PrecisClusterTests", dependencies: [
            "PrecisCore", "PrecisWire", "PrecisTrain", "PrecisModels", "PrecisData", "PrecisObservability", "PrecisHub",
            "precis", "precis-coordinator", "precis-ps", "precis-worker", "PrecisTestSupport"], swiftSettings: driverTests),
        // docs/architecture.md's module table and every import checked against this file.
        .testTarget(name: "ArchitectureTests", swiftSettings: driverTests),
        // Runs the built `precis` executable as a real process.
        .testTarget(name: "PrecisCLITests", dependencies: ["PrecisCore", "PrecisMetrics", "precis", "precis-coordinator", "precis-ps", "precis-worker", "PrecisTestSupport"], swiftSettings: driverTests),
    ]
)
