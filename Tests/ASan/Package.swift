// swift-tools-version: 6.1
// The modules that wrap C libraries (nghttp2, zlib) and their tests, linked here from the main
// package so that AddressSanitizer runs them without building the rest (TLS, crypto).
// Run: swift test --sanitize=address   (scripts/test.sh does)
internal import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
  name: "QuadASan",
  targets: [
    .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .target(name: "HTTP2Session", dependencies: ["CNGHTTP2"], swiftSettings: swiftSettings),
    .target(name: "Gzip", dependencies: ["CZlib"], swiftSettings: swiftSettings),
    .testTarget(name: "HTTP2SessionTests", dependencies: ["HTTP2Session"], swiftSettings: swiftSettings),
    .testTarget(name: "GzipTests", dependencies: ["Gzip"], swiftSettings: swiftSettings),
  ]
)
