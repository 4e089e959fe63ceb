public import Foundation

/// Test certificates made at test time with the `openssl` command: a CA, a server certificate for
/// `localhost` / 127.0.0.1, a client certificate from the same CA, and a client certificate from
/// another CA (which servers must refuse).
public struct TestCertificates: Sendable {
  public let directory: URL
  public var caCertificate: String { path("ca.pem") }
  public var serverCertificate: String { path("server.pem") }
  public var serverKey: String { path("server.key") }
  public var clientCertificate: String { path("client.pem") }
  public var clientKey: String { path("client.key") }
  public var strangerCertificate: String { path("stranger.pem") }
  public var strangerKey: String { path("stranger.key") }
  /// The CA that issued the stranger's certificate.
  public var strangerCA: String { path("otherca.pem") }

  func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  /// Makes a fresh set in a new temporary folder.
  public static func make() async throws -> TestCertificates {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quad-certs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let script = """
      set -e
      cd '\(dir.path)'
      cat > server.ext <<'EXT'
      subjectAltName=DNS:localhost,DNS:quad.test.campus,IP:127.0.0.1
      EXT
      cat > client.ext <<'EXT'
      subjectAltName=DNS:scanner-7.campus,URI:spiffe://campus/scanner-7
      EXT
      for ca in ca otherca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
          -subj "/CN=Quad Test $ca" -keyout $ca.key -out $ca.pem 2>/dev/null
      done
      issue() { # name subject ca ext
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout $1.key -out $1.csr 2>/dev/null
        openssl x509 -req -in $1.csr -CA $3.pem -CAkey $3.key -CAcreateserial -days 2 -extfile $4 -out $1.pem 2>/dev/null
      }
      issue server "/CN=localhost" ca server.ext
      issue client "/O=Campus/CN=scanner-7" ca client.ext
      issue stranger "/CN=stranger" otherca client.ext
      """
    let (status, output) = try await runProcess(["bash", "-c", script])
    guard status == 0 else { throw CertificateError(output: output) }
    return TestCertificates(directory: dir)
  }

  struct CertificateError: Error { var output: String }
}
