// swift-tools-version:6.0
import PackageDescription

// Fuzz harnesses of compressae, a package of their own so that the sanitizer
// and fuzzer flags stay out of the main package (which must remain usable as
// a dependency). Build and run them with scripts/fuzz.
let package = Package(
    name: "CompresSAEFuzz",
    dependencies: [.package(path: "CompresSAE")],
    targets: [
        .executableTarget(
            name: "compressae-fuzz",
            dependencies: [.product(name: "CompresSAE", package: "CompresSAE")],
            path: "Sources/compressae-fuzz",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
