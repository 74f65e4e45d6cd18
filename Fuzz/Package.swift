// swift-tools-version: 5.4
// libFuzzer targets for ipvstop's readers of outside data. A package of its own, depending on
// ipvstop by path, so the fuzz-only build flags (-sanitize=fuzzer,address -parse-as-library)
// and the targets' libFuzzer entry points stay out of the main build. Build and run: see
// README.md, or Tests/Fuzz/run.
//
// Tools version 5.4: from 5.5 on, SwiftPM links an executable with `main` defined as the
// target's own Swift entry point, which a -parse-as-library target has not; libFuzzer brings
// main. The targets are main.swift files holding only declarations.
import PackageDescription

// SwiftPM names a path dependency after its folder's name, which differs from clone to clone
// (and may be "fuzz", this package's own name): `ipvstop` is a link to the folder above, so
// the dependency is always called ipvstop.
let ipvstop = "ipvstop"

func target(_ name: String, _ folder: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: ipvstop) },
        path: "Targets/\(folder)")
}

let package = Package(
    name: "ipvstop-fuzz",
    dependencies: [.package(name: ipvstop, path: ipvstop)],
    targets: [
        target("fuzz-connection-table", "ConnectionTable", ["IPVSReader", "IPVSModel"]),
        target("fuzz-service-table", "ServiceTable", ["IPVSReader", "IPVSModel"]),
        target("fuzz-small-files", "SmallFiles", ["IPVSReader", "IPVSModel"]),
        target("fuzz-netlink", "Netlink", ["IPVSReader"]),
        target("fuzz-recording", "Recording", ["IPVSDemo", "IPVSModel"]),
        target("fuzz-kernel-config", "KernelConfig", ["IPVSReader"]),
    ]
)
