// swift-tools-version: 6.1
// Wire benchmark: Quad's generated types in the shared protobuf harness (../shared/bench/wire),
// timed in one process against swift-protobuf 1.39.0. Run: scripts/bench-wire.sh
// The harness sources are links into ../shared; only ImplQuad and the registry are Quad's.
import PackageDescription

let package = Package(
  name: "QuadWireBench",
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    .package(name: "Quad", path: "../.."),
  ],
  targets: [
    .target(name: "WireBenchKit"),
    .target(
      name: "ImplSwiftProtobuf",
      dependencies: ["WireBenchKit", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
    ),
    .target(
      name: "ImplQuad",
      dependencies: ["WireBenchKit", .product(name: "QuadProtobuf", package: "Quad")]
    ),
    .executableTarget(
      name: "wirebench",
      dependencies: ["WireBenchKit", "ImplSwiftProtobuf", "ImplQuad"]
    ),
  ]
)
