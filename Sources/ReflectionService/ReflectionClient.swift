package import ProtoDescriptors
package import QuadRPC
internal import GRPCWire
internal import QuadProtobuf

/// Asks a server's reflection service what it serves and fetches the descriptors of what a
/// caller needs: the client half of `quad list`, `quad describe` and `quad call`.
///
/// It asks `grpc.reflection.v1` first and falls back to `grpc.reflection.v1alpha` when the server
/// answers UNIMPLEMENTED (as grpcio-reflection, which serves only v1alpha, does).
package struct ReflectionClient: Sendable {
  package let client: GRPCClient
  package let options: CallOptions

  package init(_ client: GRPCClient, options: CallOptions = CallOptions()) {
    self.client = client
    self.options = options
  }

  static let paths = [
    Grpc_Reflection_V1_ServerReflection.Method.ServerReflectionInfo.descriptor.fullPath,
    Grpc_Reflection_V1Alpha_ServerReflection.Method.ServerReflectionInfo.descriptor.fullPath,
  ]

  /// Runs `body` with a function that asks one question on a reflection stream.
  private func session<R: Sendable>(
    _ body: (_ ask: (Grpc_Reflection_V1_ServerReflectionRequest) async throws -> Grpc_Reflection_V1_ServerReflectionResponse) async throws -> R
  ) async throws -> R {
    var lastError: (any Error)?
    for path in Self.paths {
      do {
        return try await client.bidirectional(
          path, requestType: Grpc_Reflection_V1_ServerReflectionRequest.self,
          responseType: Grpc_Reflection_V1_ServerReflectionResponse.self, options: options
        ) { writer, responses in
          var answers = responses.makeAsyncIterator()
          let result = try await body { request in
            try await writer.write(request)
            guard let answer = try await answers.next() else {
              throw RPCError(code: .unavailable, message: "the reflection stream ended without an answer")
            }
            return answer
          }
          writer.finish()
          return result
        }
      } catch let e as RPCError where e.code == .unimplemented {
        lastError = e
        continue
      }
    }
    throw RPCError(code: .unimplemented, message: "the server offers no reflection (v1 or v1alpha): \((lastError as? RPCError)?.message ?? "")")
  }

  /// The names of the services the server lists.
  package func listServices() async throws -> [String] {
    try await session { ask in
      var request = Grpc_Reflection_V1_ServerReflectionRequest()
      request.listServices = ""
      let answer = try await ask(request)
      switch answer.messageResponse {
      case .listServicesResponse(let list)?: return list.service.map(\.name)
      case .errorResponse(let e)?: throw Self.rpcError(e)
      default: throw RPCError(code: .internal, message: "unexpected answer to list_services")
      }
    }
  }

  /// A pool with the files that declare `symbols` and everything they import.
  ///
  /// - Throws: ``RPCError`` NOT_FOUND naming a symbol the server does not know.
  package func pool(containing symbols: [String]) async throws -> DescriptorPool {
    let files = try await session { ask -> [[UInt8]] in
      var byName: [String: [UInt8]] = [:]
      func add(_ answer: Grpc_Reflection_V1_ServerReflectionResponse) throws -> [String] {
        switch answer.messageResponse {
        case .fileDescriptorResponse(let r)?:
          var names: [String] = []
          for bytes in r.fileDescriptorProto {
            let file = try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
            if byName[file.name] == nil { byName[file.name] = bytes }
            names.append(file.name)
          }
          return names
        case .errorResponse(let e)?: throw Self.rpcError(e)
        default: throw RPCError(code: .internal, message: "unexpected reflection answer")
        }
      }
      for symbol in symbols {
        var request = Grpc_Reflection_V1_ServerReflectionRequest()
        request.fileContainingSymbol = symbol
        do {
          _ = try add(try await ask(request))
        } catch let e as RPCError where e.code == .notFound {
          throw RPCError(code: .notFound, message: "the server does not know \(symbol) (\(e.message))")
        }
      }
      // Imports the server left out (it may skip files it sent earlier on the stream).
      var pending = Array(byName.keys)
      while let name = pending.popLast() {
        guard let file = try? Google_Protobuf_FileDescriptorProto(serializedBytes: byName[name]!) else { continue }
        for dependency in file.dependency where byName[dependency] == nil {
          if dependency.hasPrefix("google/protobuf/") && DescriptorPool.builtInFileNames.contains(dependency) { continue }
          var request = Grpc_Reflection_V1_ServerReflectionRequest()
          request.fileByFilename = dependency
          pending.append(contentsOf: try add(try await ask(request)))
        }
      }
      return Array(byName.values)
    }
    return try DescriptorPool(files: files)
  }

  private static func rpcError(_ e: Grpc_Reflection_V1_ErrorResponse) -> RPCError {
    RPCError(code: GRPCStatus.Code(rawValue: Int(e.errorCode)) ?? .unknown, message: e.errorMessage)
  }
}
