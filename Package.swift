// swift-tools-version: 6.1
import PackageDescription

/// Settings every target shares: Swift 6 mode, explicit import access levels,
/// explicit existentials.
let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
  name: "Quad",
  products: [
    .library(name: "QuadProtobuf", targets: ["QuadProtobuf"]),
    .executable(name: "quad", targets: ["quad"]),
    .executable(name: "protoc-gen-quad", targets: ["protoc-gen-quad"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
  ],
  targets: [
    // C libraries: one system-library target each (used by the next issues).
    .systemLibrary(
      name: "CNGHTTP2",
      pkgConfig: "libnghttp2",
      providers: [.apt(["libnghttp2-dev"])]
    ),
    .systemLibrary(
      name: "CLibPQ",
      pkgConfig: "libpq",
      providers: [.apt(["libpq-dev"])]
    ),
    // Linux's epoll (not in Glibc's Swift module), for Postgres's socket poller.
    .systemLibrary(name: "CEpoll"),
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]
    ),
    .systemLibrary(
      name: "CProtobufC",
      pkgConfig: "libprotobuf-c",
      providers: [.apt(["libprotobuf-c-dev"])]
    ),

    // The protobuf binary + JSON runtime.
    .target(
      name: "QuadProtobuf",
      swiftSettings: swiftSettings
    ),

    // HTTP/2 framing, HPACK and flow control: the only importer of CNGHTTP2.
    .target(
      name: "HTTP2Session",
      dependencies: ["CNGHTTP2"],
      swiftSettings: swiftSettings
    ),

    // gRPC-over-HTTP/2 rules, pure: framing, grpc-timeout, grpc-message, -bin metadata.
    .target(
      name: "GRPCWire",
      swiftSettings: swiftSettings
    ),

    // gzip for grpc-encoding: the only importer of CZlib.
    .target(
      name: "Gzip",
      dependencies: ["CZlib"],
      swiftSettings: swiftSettings
    ),

    // The gRPC runtime: server (and, later, client) over NIO sockets, HTTP2Session and GRPCWire.
    .target(
      name: "QuadRPC",
      dependencies: [
        "HTTP2Session", "GRPCWire", "Gzip", "QuadProtobuf",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
      ],
      swiftSettings: swiftSettings
    ),

    // PostgreSQL through libpq: the only importer of CLibPQ (and of CEpoll).
    .target(
      name: "Postgres",
      dependencies: [
        "CLibPQ",
        "CEpoll",
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),

    // The event log = the outbox: appends inside write transactions, gap-safe committed reads.
    .target(
      name: "EventStore",
      dependencies: ["Postgres", "QuadProtobuf"],
      exclude: ["GapSafety.md"],
      swiftSettings: swiftSettings
    ),

    // The PostgreSQL cluster `quad serve` runs when given no database URL.
    .target(
      name: "EmbeddedPostgres",
      dependencies: [.product(name: "NIOPosix", package: "swift-nio")],
      swiftSettings: swiftSettings
    ),

    // The relay: follows the log behind its fence and feeds every subscriber in the process.
    .target(
      name: "EventRelay",
      dependencies: ["EventStore", "Postgres"],
      swiftSettings: swiftSettings
    ),

    // In-process consumers (projections): retries with backoff, a dead-letter table.
    .target(
      name: "EventConsumers",
      dependencies: ["EventRelay", "EventStore", "Postgres"],
      swiftSettings: swiftSettings
    ),

    // quad.events.v1.Events: subscriptions, consumer groups, stream history over gRPC.
    .target(
      name: "EventsService",
      dependencies: [
        "Authorization", "EventRelay", "EventStore", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),

    // The campus contracts (Protos/campus): generated messages, services, clients and events.
    .target(
      name: "CampusContracts",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // What every campus context's service shares: page tokens, field checks, the clock.
    .target(
      name: "CampusSupport",
      dependencies: ["EventsService", "QuadRPC", .product(name: "Crypto", package: "swift-crypto")],
      swiftSettings: swiftSettings
    ),

    // The students context: the student aggregate, its read model and the roster import.
    .target(
      name: "Students",
      dependencies: [
        "Authorization", "CampusContracts", "CampusSupport", "EventStore", "EventsService", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire",
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: swiftSettings
    ),

    // The scans context: card scans, and its own card -> student lookup from student events.
    .target(
      name: "Scans",
      dependencies: ["Authorization", "CampusContracts", "CampusSupport", "EventConsumers", "EventRelay", "EventStore", "EventsService", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // The analytics context: projections of the scan stream, their queries and live occupancy.
    .target(
      name: "Analytics",
      dependencies: ["CampusContracts", "CampusSupport", "EventConsumers", "EventRelay", "EventStore", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // The accounts context: students' balances, credits, charges and refunds.
    .target(
      name: "Accounts",
      dependencies: ["CampusContracts", "CampusSupport", "EventStore", "EventsService", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // The card office: card issuing as a saga across contexts (reserve, charge, activate; compensated in reverse).
    .target(
      name: "CardOffice",
      dependencies: [
        "CampusContracts", "CampusSupport", "EventStore", "EventsService", "Postgres", "QuadProtobuf", "QuadRPC", "GRPCWire",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),

    // Who is calling: JWT bearer tokens (JWKS) and mutual-TLS service identities.
    .target(
      name: "Authentication",
      dependencies: [
        "QuadRPC", "GRPCWire",
        .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),

    // What they may do: a policy of methods and event types per role and service.
    .target(
      name: "Authorization",
      dependencies: ["Authentication", "QuadRPC", "GRPCWire", .product(name: "Logging", package: "swift-log")],
      swiftSettings: swiftSettings
    ),

    // How fast each identity may call: token buckets, RESOURCE_EXHAUSTED with a retry hint.
    .target(
      name: "RateLimiting",
      dependencies: ["Authentication", "QuadRPC", "GRPCWire", .product(name: "Logging", package: "swift-log")],
      swiftSettings: swiftSettings
    ),

    // Calls to a neighbour that fails or is slow: circuit breakers and bulkheads.
    .target(
      name: "Resilience",
      dependencies: ["QuadRPC", "GRPCWire", .product(name: "CoreMetrics", package: "swift-metrics")],
      swiftSettings: swiftSettings
    ),

    // quad.admin.v1.Admin: a running quad's own state (its circuit breakers).
    .target(
      name: "AdminService",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire", "Resilience"],
      swiftSettings: swiftSettings
    ),

    // Events over HTTP for systems without gRPC: signed webhook deliveries from a consumer group.
    .target(
      name: "Webhooks",
      dependencies: [
        "EventConsumers", "EventRelay", "EventStore", "ProtoDescriptors", "Resilience",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: swiftSettings
    ),

    // Where a request went: W3C traceparent on every call and event, spans exported over OTLP/gRPC.
    .target(
      name: "OTLPTracing",
      dependencies: [
        "EventRelay", "EventStore", "EventsService", "QuadProtobuf", "QuadRPC", "GRPCWire",
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "Instrumentation", package: "swift-distributed-tracing"),
        .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),

    // What operators see: per-call metrics and log lines, platform gauges, JSON logs, /metrics.
    .target(
      name: "Observability",
      dependencies: [
        "EventRelay", "EventStore", "Postgres", "QuadRPC", "GRPCWire",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ],
      swiftSettings: swiftSettings
    ),

    // bench.v1.Bench (../shared/bench/grpc/bench.proto) for `quad bench-server`.
    .target(
      name: "BenchService",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire", "EventStore", "EventsService", "Postgres"],
      swiftSettings: swiftSettings
    ),

    // grpc.health.v1.Health: per-service serving status, Check, List and Watch.
    .target(
      name: "HealthService",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // Descriptor pools over serialized FileDescriptorProtos: reflection, `quad describe` and `quad call`.
    .target(
      name: "ProtoDescriptors",
      dependencies: ["QuadProtobuf"],
      swiftSettings: swiftSettings
    ),

    // grpc.reflection.v1 and v1alpha: every Quad server describes what it serves.
    .target(
      name: "ReflectionService",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire", "ProtoDescriptors"],
      swiftSettings: swiftSettings
    ),

    // grpc.testing.TestService (the official interop service) for `quad interop-server` and
    // `quad interop-client`.
    .target(
      name: "InteropService",
      dependencies: ["QuadProtobuf", "QuadRPC", "GRPCWire"],
      swiftSettings: swiftSettings
    ),

    // The `quad` command.
    .executableTarget(
      name: "quad",
      dependencies: [
        "BenchService", "InteropService", "HealthService", "ReflectionService", "ProtoDescriptors", "QuadRPC", "QuadProtobuf", "GRPCWire",
        "EmbeddedPostgres", "EventRelay", "EventStore", "EventsService", "EventConsumers", "Postgres",
        "CampusContracts", "Students", "Scans", "Analytics", "Observability", "Authentication", "Authorization", "RateLimiting", "Resilience", "Webhooks", "AdminService", "OTLPTracing", "Accounts", "CardOffice",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ],
      swiftSettings: swiftSettings
    ),

    // The code generator: a tested library and a thin protoc plugin.
    .target(
      name: "QuadCodeGen",
      dependencies: ["QuadProtobuf"],
      path: "codegen/QuadCodeGen",
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "protoc-gen-quad",
      dependencies: ["QuadCodeGen"],
      path: "codegen/protoc-gen-quad",
      swiftSettings: swiftSettings
    ),

    // Test support: generated messages from Tests/Protos.
    .target(
      name: "TestMessages",
      dependencies: ["QuadProtobuf"],
      path: "Tests/TestMessages",
      swiftSettings: swiftSettings
    ),
    // Helpers the test targets share (subprocesses on Dispatch threads, the repository root).
    .target(
      name: "TestSupport",
      dependencies: [.product(name: "JWTKit", package: "jwt-kit")],
      path: "Tests/TestSupport",
      swiftSettings: swiftSettings
    ),
    // protoc-c output for the differential tests, linked with libprotobuf-c.
    .target(
      name: "CTestMessages",
      dependencies: ["CProtobufC"],
      path: "Tests/CTestMessages",
      cSettings: [.headerSearchPath("generated")],
      linkerSettings: [.linkedLibrary("protobuf-c")]
    ),
    .testTarget(
      name: "QuadProtobufTests",
      dependencies: ["QuadProtobuf", "TestMessages"],
      resources: [.copy("FailCases")],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuadProtobufDifferentialTests",
      dependencies: ["QuadProtobuf", "TestMessages", "CTestMessages", "TestSupport"],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "HTTP2SessionTests",
      dependencies: ["HTTP2Session"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "GRPCWireTests",
      dependencies: ["GRPCWire"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "GzipTests",
      dependencies: ["Gzip"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuadRPCTests",
      dependencies: [
        "QuadRPC", "GRPCWire", "BenchService", "QuadProtobuf", "TestSupport", "HTTP2Session", "Gzip",
        .product(name: "NIOPosix", package: "swift-nio"),
      ],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "InteropTests",
      dependencies: ["InteropService", "QuadRPC", "GRPCWire", "TestSupport"],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "HealthServiceTests",
      dependencies: ["HealthService", "QuadRPC", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ReflectionServiceTests",
      dependencies: ["ReflectionService", "ProtoDescriptors", "HealthService", "BenchService", "QuadRPC", "QuadProtobuf", "TestMessages", "TestSupport"],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuadCommandTests",
      dependencies: [
        "InteropService", "HealthService", "ReflectionService", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport",
        "EventsService", "EventStore", "Postgres",
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "PostgresTests",
      dependencies: ["Postgres", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EventStoreTests",
      dependencies: ["EventStore", "Postgres", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EventsServiceTests",
      dependencies: ["EventsService", "EventConsumers", "BenchService", "EventRelay", "EventStore", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport", "TestMessages"],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "StudentsTests",
      dependencies: [
        "Students", "CampusContracts", "CampusSupport", "EventsService", "EventStore", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport",
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "AccountsTests",
      dependencies: ["Accounts", "CampusContracts", "EventStore", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "CardOfficeTests",
      dependencies: [
        "CardOffice", "Accounts", "Students", "CampusContracts", "EventStore", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport",
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "AnalyticsTests",
      dependencies: ["Analytics", "Postgres", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "CampusTests",
      dependencies: ["CampusContracts", "EventsService", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport"],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "CampusContractsTests",
      dependencies: ["TestSupport", "CampusContracts", "CampusSupport", "EventStore", "QuadProtobuf"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EmbeddedPostgresTests",
      dependencies: ["EmbeddedPostgres", "Postgres"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "AuthenticationTests",
      dependencies: ["Authentication", "QuadRPC", "GRPCWire", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "AuthorizationTests",
      dependencies: [
        "Authorization", "Authentication", "RateLimiting", "CampusContracts", "EventsService", "HealthService", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire",
        "TestSupport",
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "OTLPTracingTests",
      dependencies: [
        "OTLPTracing", "CampusContracts", "EventsService", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport",
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "Instrumentation", package: "swift-distributed-tracing"),
        .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
        .product(name: "Logging", package: "swift-log"),
      ],
      exclude: ["python"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ResilienceTests",
      dependencies: ["Resilience", "QuadRPC", "QuadProtobuf", "GRPCWire"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "WebhooksTests",
      dependencies: ["Webhooks", "AdminService", "CampusContracts", "EventsService", "Postgres", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "ChaosTests",
      dependencies: ["AdminService", "CampusContracts", "EventsService", "QuadRPC", "QuadProtobuf", "GRPCWire", "TestSupport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuadCodeGenTests",
      dependencies: ["QuadCodeGen", "QuadProtobuf", "TestSupport"],
      swiftSettings: swiftSettings
    ),
  ]
)
