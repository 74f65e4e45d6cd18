// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ipvstop",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ipvstop", targets: ["ipvstop"]),
        .library(name: "IPVSModel", targets: ["IPVSModel"]),
        .library(name: "IPVSReader", targets: ["IPVSReader"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The director as immutable values: what every face presents.
        .target(name: "IPVSModel"),
        // The only code that knows the kernel's formats: /proc text and IPVS netlink.
        .target(name: "IPVSReader", dependencies: ["IPVSModel"]),
        // Snapshots in, aggregations (clients, persistence groups) and findings out. The
        // faces present these; none computes its own.
        .target(name: "IPVSAnalysis", dependencies: ["IPVSModel"]),
        // `snapshot --json`: the public, documented schema.
        .target(name: "IPVSJSON", dependencies: ["IPVSModel", "IPVSAnalysis"]),
        .executableTarget(
            name: "ipvstop",
            dependencies: [
                "IPVSModel", "IPVSReader", "IPVSAnalysis", "IPVSJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Measures the connection-table reader against cat and awk; prints ratios.
        .executableTarget(
            name: "ipvstop-bench",
            dependencies: ["IPVSModel", "IPVSReader"],
            path: "Benchmarks/ipvstop-bench"
        ),
        .testTarget(name: "IPVSModelTests", dependencies: ["IPVSModel"]),
        .testTarget(name: "IPVSReaderTests", dependencies: ["IPVSReader", "IPVSModel"]),
        .testTarget(name: "IPVSAnalysisTests", dependencies: ["IPVSAnalysis", "IPVSModel", "IPVSReader"]),
        .testTarget(name: "IPVSJSONTests", dependencies: ["IPVSJSON", "IPVSReader", "IPVSModel"]),
    ],
    swiftLanguageModes: [.v6]
)
