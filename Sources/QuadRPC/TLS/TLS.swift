internal import NIOCore
internal import NIOSSL
internal import SwiftASN1
internal import X509

/// TLS for a server: its certificate chain and key (PEM files), and, for mutual TLS, the CA that
/// client certificates must chain to. TLS 1.2 or 1.3, ALPN `h2`.
package struct ServerTLS: Sendable, Hashable {
  package var certificateChainPath: String
  package var privateKeyPath: String
  /// When set, client certificates must be issued by this CA (PEM).
  package var clientCAPath: String?
  /// With a client CA: whether every client must present a certificate (else one presented is
  /// verified, and a client without one connects unidentified, to authenticate otherwise).
  package var requireClientCertificate: Bool

  package init(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil, requireClientCertificate: Bool = true) {
    self.certificateChainPath = certificateChainPath
    self.privateKeyPath = privateKeyPath
    self.clientCAPath = clientCAPath
    self.requireClientCertificate = requireClientCertificate
  }

  func makeContext() throws(TLSSetupError) -> NIOSSLContext {
    do {
      let chain = try NIOSSLCertificate.fromPEMFile(certificateChainPath).map { NIOSSLCertificateSource.certificate($0) }
      let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: privateKeyPath, format: .pem))
      var config: TLSConfiguration
      if let clientCAPath {
        let roots = try NIOSSLCertificate.fromPEMFile(clientCAPath)
        config = .makeServerConfigurationWithMTLS(certificateChain: chain, privateKey: key, trustRoots: .certificates(roots))
        if !requireClientCertificate { config.certificateVerification = .optionalVerification }
      } else {
        config = .makeServerConfiguration(certificateChain: chain, privateKey: key)
      }
      config.minimumTLSVersion = .tlsv12
      config.applicationProtocols = ["h2"]
      return try NIOSSLContext(configuration: config)
    } catch {
      throw TLSSetupError(reason: "server TLS (\(certificateChainPath), \(privateKeyPath)): \(error)")
    }
  }
}

/// TLS for a client: which CAs to trust (the system's by default), an optional client certificate
/// for mutual TLS, and the name to expect in the server's certificate.
package struct ClientTLS: Sendable, Hashable {
  /// PEM file of trusted CAs; `nil` trusts the system's roots.
  package var trustRootsPath: String?
  package var certificateChainPath: String?
  package var privateKeyPath: String?
  /// The server name to verify (and send as SNI and `:authority`) instead of the target's host.
  package var serverHostOverride: String?

  package init(trustRootsPath: String? = nil, certificateChainPath: String? = nil, privateKeyPath: String? = nil, serverHostOverride: String? = nil) {
    self.trustRootsPath = trustRootsPath
    self.certificateChainPath = certificateChainPath
    self.privateKeyPath = privateKeyPath
    self.serverHostOverride = serverHostOverride
  }

  func makeContext() throws(TLSSetupError) -> NIOSSLContext {
    do {
      var config = TLSConfiguration.makeClientConfiguration()
      config.minimumTLSVersion = .tlsv12
      config.applicationProtocols = ["h2"]
      if let trustRootsPath {
        config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustRootsPath))
      }
      if let certificateChainPath, let privateKeyPath {
        config.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateChainPath).map { .certificate($0) }
        config.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyPath, format: .pem))
      }
      return try NIOSSLContext(configuration: config)
    } catch {
      throw TLSSetupError(reason: "client TLS: \(error)")
    }
  }
}

/// TLS settings that cannot be used (unreadable files, bad PEM), and why.
package struct TLSSetupError: Error, Hashable, Sendable, CustomStringConvertible {
  package var reason: String
  package var description: String { reason }
}

/// Who the peer proved to be with its TLS certificate (mutual TLS).
package struct PeerIdentity: Sendable, Hashable {
  /// The certificate's subject, in RFC 4514 form (`CN=scanner-7,O=Campus`).
  package var subject: String
  /// The subject's common name, if any.
  package var commonName: String?
  /// DNS names and URIs (such as SPIFFE IDs) from the subject alternative names.
  package var dnsNames: [String]
  package var uris: [String]
  /// The certificate, DER-encoded.
  package var certificateDER: [UInt8]

  init?(_ certificate: NIOSSLCertificate) {
    guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return nil }
    certificateDER = der
    subject = parsed.subject.description
    commonName = nil
    for rdn in parsed.subject {
      for attribute in rdn where attribute.type == ASN1ObjectIdentifier.RDNAttributeType.commonName {
        commonName = attribute.value.description
      }
    }
    dnsNames = []
    uris = []
    if let sans = try? parsed.extensions.subjectAlternativeNames {
      for name in sans {
        switch name {
        case .dnsName(let n): dnsNames.append(n)
        case .uniformResourceIdentifier(let u): uris.append(u)
        default: break
        }
      }
    }
  }
}
