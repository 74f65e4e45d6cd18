// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ipvstop",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ipvstop", targets: ["ipvstop"]),
        .library(name: "IPVSModel", targets: ["IPVSModel"]),
        .library(name: "IPVSReader", targets: ["IPVSReader"]),
        // The recording reader, for the fuzz targets in Fuzz/ (a package of their own).
        .library(name: "IPVSDemo", targets: ["IPVSDemo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The exporter's HTTP server: SwiftNIO's HTTP/1 codec on its event loops.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        // The raw-memory kit the fast code is built from: pooled blocks, arenas, vectors, an
        // open-addressing index, the hash constants and the radix sort. Each buffer states
        // its invariants and checks them in debug builds. Its types are `package`, and
        // `@usableFromInline` besides: the compiler inlines a package type's `@inlinable`
        // members into another module only then (Swift 6.3; without it the analysis called
        // unspecialized `RawVector.append` and `Mixer`'s getters: +11% instructions).
        .target(name: "IPVSRawMemory"),
        // The director as immutable values: what every face presents.
        .target(name: "IPVSModel", dependencies: ["IPVSRawMemory"]),
        // The only code that knows the kernel's formats: /proc text and IPVS netlink.
        .target(name: "IPVSReader", dependencies: ["IPVSModel", "CZlib"]),
        // zlib, through a module map: the kernel's config in /proc/config.gz (CONFIG_HZ).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // glibc's mallopt, through a module map: the pollers keep freed memory for the next poll.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        // The compiler's prefetch hint, through a module map: the sort's scattered stores.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        // Snapshots in, aggregations (clients, persistence groups) and findings out. The
        // faces present these; none computes its own.
        .target(name: "IPVSAnalysis", dependencies: ["IPVSModel", "IPVSRawMemory", "CMalloc", "CPrefetch"]),
        // A simulated director whose snapshots evolve over time: `--demo`, and the source
        // the dashboard's and subagent's tests run on.
        .target(name: "IPVSDemo", dependencies: ["IPVSModel", "IPVSRawMemory"]),
        // ncursesw, through a module map and a header for its macros.
        .systemLibrary(name: "CNcurses", path: "Sources/CNcurses"),
        // One feed for every face: a live director, a captured tree, the demo or a recording,
        // chosen once by the executable, handed out as analysed snapshots.
        .target(name: "IPVSFeed", dependencies: ["IPVSModel", "IPVSAnalysis", "IPVSReader", "IPVSDemo"]),
        .target(name: "IPVSDashboard", dependencies: ["IPVSModel", "IPVSAnalysis", "IPVSFeed", "CNcurses"]),
        // net-snmp's agent library: a thin C shim for its macros and variadics.
        .target(
            name: "CNetSNMP",
            linkerSettings: [.linkedLibrary("netsnmpagent"), .linkedLibrary("netsnmp")]
        ),
        .target(name: "IPVSAgent", dependencies: ["IPVSModel", "IPVSAnalysis", "IPVSFeed", "CNetSNMP"]),
        // The Prometheus face: the exposition of the last analysed snapshot, over SwiftNIO's
        // HTTP/1 server.
        .target(name: "IPVSExporter", dependencies: [
            "IPVSModel", "IPVSAnalysis",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // `snapshot --json`: the public, documented schema.
        .target(name: "IPVSJSON", dependencies: ["IPVSModel", "IPVSAnalysis"]),
        .executableTarget(
            name: "ipvstop",
            dependencies: [
                "IPVSModel", "IPVSReader", "IPVSAnalysis", "IPVSJSON", "IPVSDemo", "IPVSFeed", "IPVSDashboard", "IPVSAgent", "IPVSExporter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Measures the connection-table reader against cat and awk, and the analysis against the
        // poll; prints ratios.
        .executableTarget(
            name: "ipvstop-bench",
            dependencies: ["IPVSModel", "IPVSReader", "IPVSAnalysis"],
            path: "Benchmarks/ipvstop-bench"
        ),
        .testTarget(name: "IPVSRawMemoryTests", dependencies: ["IPVSRawMemory"]),
        .testTarget(name: "IPVSModelTests", dependencies: ["IPVSModel"]),
        // Synthetic /proc trees in the kernel's printf formats, for the tests that read them.
        .target(name: "IPVSTestSupport", path: "Tests/IPVSTestSupport"),
        .testTarget(name: "IPVSReaderTests", dependencies: ["IPVSReader", "IPVSModel", "IPVSTestSupport"]),
        .testTarget(name: "IPVSAnalysisTests", dependencies: ["IPVSAnalysis", "IPVSModel", "IPVSRawMemory", "IPVSReader", "IPVSTestSupport"]),
        .testTarget(name: "IPVSFeedTests", dependencies: ["IPVSFeed", "IPVSAnalysis", "IPVSDemo", "IPVSModel"]),
        .testTarget(name: "IPVSDashboardTests", dependencies: ["IPVSDashboard", "IPVSFeed", "IPVSDemo", "IPVSModel", "IPVSReader", "IPVSTestSupport"]),
        .testTarget(name: "IPVSAgentTests", dependencies: ["IPVSAgent", "IPVSDemo", "IPVSModel"]),
        .testTarget(name: "IPVSExporterTests", dependencies: ["IPVSExporter", "IPVSAnalysis", "IPVSDemo", "IPVSModel"]),
        .testTarget(name: "IPVSJSONTests", dependencies: ["IPVSJSON", "IPVSReader", "IPVSModel"]),
    ],
    swiftLanguageModes: [.v6]
)
