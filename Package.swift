// swift-tools-version:6.2
// mcpjail: a sandbox launcher and containment supervisor for MCP servers on Linux.
import PackageDescription

/// For the targets that use Foundation itself (tests, the Swift SDK client): the Makefile
/// turns off the automatic linking of Foundation, which mcpjail must not load.
let foundation: [LinkerSetting] = [
    .linkedLibrary("Foundation"), .linkedLibrary("FoundationInternationalization"), .linkedLibrary("_FoundationICU"),
]

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "mcpjail",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mcpjail", targets: ["mcpjail"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", exact: "0.12.1"),
    ],
    targets: [
        // C only where Swift cannot go: the steps between fork and exec.
        .target(name: "CMCPJailShims"),
        // A constructor of the mcpjail executable alone: `mcpjail run`'s namespace holder,
        // started before `main` (early_start.c).
        .target(name: "CMCPJailEarlyStart", dependencies: ["CMCPJailShims"]),
        // System libraries (make deps installs their -dev packages).
        .systemLibrary(name: "CLibSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CLibCap", pkgConfig: "libcap", providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // Profiles, JSON-RPC framing, relay decisions, audit model. No privileges needed to test.
        .target(
            name: "MCPJailCore",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                "CPCRE2",
            ],
            swiftSettings: strict
        ),
        // Talking to the kernel: spawning, signals, pipes, state directory.
        .target(
            name: "MCPJailLinux",
            dependencies: [
                "MCPJailCore", "MCPJailStore", "CMCPJailShims", "CLibSeccomp", "CLibCap",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The idempotency store on SQLite: one database per user, shared by every `mcpjail run`.
        .target(
            name: "MCPJailStore",
            dependencies: ["MCPJailCore", "CSQLite"],
            swiftSettings: strict
        ),
        // The command-line interface (one file per command).
        .target(
            name: "MCPJailCommands",
            dependencies: [
                "MCPJailCore", "MCPJailLinux", "MCPJailStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // One static PIE: every client start pays for loading the binary, and a static one has
        // no shared library to map and no symbol to look up (`mcpjail run` reached the jail
        // 2.6 ms sooner than the dynamically linked build; README, Performance). PIE keeps
        // the binary's address random (lld: gold cannot link a static PIE). glibc refuses to
        // start a static PIE with a run path, so build with `--disable-local-rpath`, as the
        // Makefile does. Its ~100,000 relocations are packed (RELR, glibc 2.36 and later):
        // 2.4 MB of RELA entries become 20 KB, and each start ~0.6 ms shorter.
        .executableTarget(
            name: "mcpjail", dependencies: ["MCPJailCommands", "CMCPJailEarlyStart"], swiftSettings: strict,
            linkerSettings: [
                .unsafeFlags(["-static-executable", "-use-ld=lld", "-Xclang-linker", "-static-pie", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
                // Libraries under FoundationEssentials that a static debug build (no dead
                // stripping) needs and is not told of by the modules it imports.
                .linkedLibrary("_FoundationCollections", .when(platforms: [.linux])),
                .linkedLibrary("_FoundationCShims", .when(platforms: [.linux])),
            ]),
        // A real MCP client built on the official Swift SDK, used by the integration tests.
        .executableTarget(
            name: "mcpjail-swift-client",
            dependencies: [.product(name: "MCP", package: "swift-sdk")],
            swiftSettings: strict, linkerSettings: foundation
        ),
        // Micro-benchmarks of hot paths (schema validation), run in a release build.
        .executableTarget(name: "mcpjail-microbench", dependencies: ["MCPJailCore"], swiftSettings: strict),
        // Used only by MCPJailStoreTests (other processes racing on one key) and to measure
        // the store (`swift run -c release mcpjail-idem-probe bench DIR`).
        .executableTarget(name: "mcpjail-idem-probe", dependencies: ["MCPJailStore", "MCPJailCore"], swiftSettings: strict),
        .testTarget(
            name: "MCPJailCoreTests",
            // jwt-kit here signs the tests' own tokens, a cross-check of mcpjail's verifier.
            dependencies: ["MCPJailCore", .product(name: "JWTKit", package: "jwt-kit")],
            swiftSettings: strict, linkerSettings: foundation
        ),
        .testTarget(
            name: "MCPJailLinuxTests", dependencies: ["MCPJailLinux", "MCPJailCore", "CMCPJailShims"],
            swiftSettings: strict, linkerSettings: foundation),
        .testTarget(
            name: "MCPJailCommandsTests",
            dependencies: ["MCPJailCommands", "MCPJailCore", "MCPJailLinux", "MCPJailStore"],
            swiftSettings: strict, linkerSettings: foundation
        ),
        .testTarget(
            name: "MCPJailStoreTests",
            dependencies: ["MCPJailStore", "MCPJailCore", "CSQLite", "mcpjail-idem-probe"],
            swiftSettings: strict, linkerSettings: foundation
        ),
    ]
)
