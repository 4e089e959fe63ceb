internal import BenchService
internal import GRPCWire
internal import QuadProtobuf
internal import QuadRPC
internal import Synchronization
internal import Testing
internal import TestSupport

/// TLS and mutual TLS with certificates made at test time, between Quad clients and servers and
/// with grpcio.
@Suite("TLS and mutual TLS")
struct TLSTests {
  /// A server whose Unary answers with the caller's certificate identity in `payload`.
  static func server(_ tls: ServerTLS) async throws -> GRPCServer {
    var router = Router()
    router.registerUnary("/bench.v1.Bench/Unary") { _, context in
      var r = Bench_V1_Resp()
      let id = context.peerIdentity
      r.payload = Array("cn=\(id?.commonName ?? "-") uris=\(id?.uris ?? []) dns=\(id?.dnsNames ?? [])".utf8)
      return r.serializedBytes()
    }
    return try await GRPCServer.start(router: router, host: "127.0.0.1", port: 0, tls: tls)
  }

  static func call(_ port: Int, _ tls: ClientTLS) async throws -> String {
    let client = try GRPCClient(target: "127.0.0.1:\(port)", tls: tls)
    defer { Task { await client.close() } }
    let r = try await client.unary("/bench.v1.Bench/Unary", request: Bench_V1_Req(), responseType: Bench_V1_Resp.self)
    return String(decoding: r.message.payload, as: UTF8.self)
  }

  static func expectRefused(_ port: Int, _ tls: ClientTLS) async {
    do {
      _ = try await call(port, tls)
      Issue.record("call succeeded with \(tls)")
    } catch let e as RPCError {
      #expect(e.code == .unavailable, "\(e)")
    } catch {
      Issue.record("\(error)")
    }
  }

  @Test("TLS: a client trusting the CA calls; one that does not is refused")
  func serverTLS() async throws {
    let certs = try await TestCertificates.make()
    let server = try await Self.server(ServerTLS(certificateChainPath: certs.serverCertificate, privateKeyPath: certs.serverKey))
    #expect(try await Self.call(server.port, ClientTLS(trustRootsPath: certs.caCertificate, serverHostOverride: "localhost")) == "cn=- uris=[] dns=[]")
    // The certificate names 127.0.0.1 too.
    #expect(try await Self.call(server.port, ClientTLS(trustRootsPath: certs.caCertificate)) == "cn=- uris=[] dns=[]")
    // System roots do not include the test CA, nor does another CA.
    await Self.expectRefused(server.port, ClientTLS())
    await Self.expectRefused(server.port, ClientTLS(trustRootsPath: certs.strangerCA, serverHostOverride: "localhost"))
    // A plaintext client gets no gRPC answer from a TLS port.
    let plain = try GRPCClient(target: "127.0.0.1:\(server.port)")
    await #expect(throws: RPCError.self) {
      _ = try await plain.unary("/bench.v1.Bench/Unary", request: Bench_V1_Req(), responseType: Bench_V1_Resp.self, options: CallOptions(timeout: .seconds(2)))
    }
    await plain.close()
    try await server.stop()
  }

  @Test("Mutual TLS: the handler sees the client's certificate identity; no or a foreign certificate is refused")
  func mutualTLS() async throws {
    let certs = try await TestCertificates.make()
    let server = try await Self.server(ServerTLS(certificateChainPath: certs.serverCertificate, privateKeyPath: certs.serverKey, clientCAPath: certs.caCertificate))
    let answer = try await Self.call(server.port, ClientTLS(trustRootsPath: certs.caCertificate, certificateChainPath: certs.clientCertificate, privateKeyPath: certs.clientKey))
    #expect(answer == #"cn=scanner-7 uris=["spiffe://campus/scanner-7"] dns=["scanner-7.campus"]"#)
    await Self.expectRefused(server.port, ClientTLS(trustRootsPath: certs.caCertificate))
    await Self.expectRefused(server.port, ClientTLS(trustRootsPath: certs.caCertificate, certificateChainPath: certs.strangerCertificate, privateKeyPath: certs.strangerKey))
    try await server.stop()
  }

  @Test("grpcio over TLS and mutual TLS against the Quad server")
  func grpcioClient() async throws {
    let certs = try await TestCertificates.make()
    let server = try await Self.server(ServerTLS(certificateChainPath: certs.serverCertificate, privateKeyPath: certs.serverKey, clientCAPath: certs.caCertificate))
    let (status, output) = try await runProcess(["python3", "-c", """
      import sys, grpc
      ca, cert, key = (open(p, "rb").read() for p in sys.argv[2:5])
      def call(creds):
          ch = grpc.secure_channel("127.0.0.1:" + sys.argv[1], creds, options=[("grpc.ssl_target_name_override", "localhost")])
          try:
              return ch.unary_unary("/bench.v1.Bench/Unary")(b"", timeout=5)
          except grpc.RpcError as e:
              return e.code().name
      print("mtls", call(grpc.ssl_channel_credentials(ca, key, cert)))
      print("nocert", call(grpc.ssl_channel_credentials(ca)))
      """, String(server.port), certs.caCertificate, certs.clientCertificate, certs.clientKey])
    try await server.stop()
    #expect(status == 0)
    #expect(output.contains("mtls b'\\x12") && output.contains("cn=scanner-7"), "\(output)")
    #expect(output.contains("nocert UNAVAILABLE"), "\(output)")
  }
}
