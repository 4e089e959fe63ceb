// swift-tools-version: 6.1
// Fuzz targets for the protobuf binary and JSON decoders (libFuzzer).
// Build: swift build -c debug --sanitize=fuzzer   (see scripts/fuzz.sh)
internal import PackageDescription

let package = Package(
  name: "QuadFuzz",
  dependencies: [.package(name: "Quad", path: "../..")],
  targets: [
    // The generated test messages (a link to Tests/TestMessages).
    .target(name: "FuzzMessages", dependencies: [.product(name: "QuadProtobuf", package: "Quad")]),
    .executableTarget(
      name: "FuzzBinary",
      dependencies: ["FuzzMessages", .product(name: "QuadProtobuf", package: "Quad")]
    ),
    .executableTarget(
      name: "FuzzJSON",
      dependencies: ["FuzzMessages", .product(name: "QuadProtobuf", package: "Quad")]
    ),
  ]
)
