// swift-tools-version:6.3
import PackageDescription

let package = Package(
    name: "CompresSAE",
    products: [
        // libCompresSAE.so: the Swift API plus the `csae_` C ABI (include/compressae.h).
        .library(name: "CompresSAE", type: .dynamic, targets: ["CompresSAE"]),
        .executable(name: "compressae-swift-example", targets: ["SwiftExample"]),
    ],
    targets: [
        // C-side types of the ABI (params struct, status codes, callback type),
        // the thread-local error slot and the runtime BLAS loader.
        .target(name: "CCompresSAE", path: "Sources/CCompresSAE"),
        .target(
            name: "CompresSAE",
            dependencies: ["CCompresSAE"],
            path: "Sources/CompresSAE",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "SwiftExample",
            dependencies: ["CompresSAE"],
            path: "examples/swift"
        ),
        .testTarget(
            name: "CompresSAETests",
            dependencies: ["CompresSAE"],
            path: "Tests/CompresSAETests"
        ),
    ]
)
