package import ProtoDescriptors
package import QuadRPC
internal import QuadProtobuf
internal import GRPCWire

/// `grpc.reflection.v1.ServerReflection` and `grpc.reflection.v1alpha.ServerReflection`: what a
/// server serves, described from the descriptors `protoc-gen-quad` embeds, so grpcurl-style tools
/// and clients in other languages can call it knowing nothing beforehand.
///
/// Both versions share one implementation: their messages are the same on the wire (same fields,
/// numbers and types), only the package differs.
///
/// ```swift
/// var router = Router()
/// MyService().register(in: &router)
/// try ReflectionService.register(in: &router, files: [QuadFile_my_service_proto.serializedDescriptor])
/// ```
package struct ReflectionService: Grpc_Reflection_V1_ServerReflection.ServiceProtocol {
  /// The descriptors answered from.
  package let pool: DescriptorPool
  /// The services `list_services` names.
  package let services: [String]

  /// Serves `pool`, listing `services`.
  package init(pool: DescriptorPool, services: [String]) {
    self.pool = pool
    self.services = services
  }

  /// The reflection protos' own descriptors (always in the pool of a server that registers this).
  package static let ownFiles = [
    QuadFile_grpc_reflection_v1_reflection_proto.serializedDescriptor,
    QuadFile_grpc_reflection_v1alpha_reflection_proto.serializedDescriptor,
  ]

  /// Registers both reflection services in `router`, describing every service registered there
  /// so far (and reflection itself) from `files` (serialized `FileDescriptorProto`s; their imports
  /// must be among them, except the well-known types).
  ///
  /// - Throws: ``DescriptorPoolError`` when the files do not form a pool, or an error naming the
  ///   registered services that none of `files` declares: a Quad server describes all it serves.
  package static func register(in router: inout Router, files: [[UInt8]]) throws {
    let pool = try DescriptorPool(files: files + ownFiles)
    let services = Set(router.serviceNames).union([
      Grpc_Reflection_V1_ServerReflection.serviceName, Grpc_Reflection_V1Alpha_ServerReflection.serviceName,
    ]).sorted()
    let undescribed = services.filter { pool.symbol($0)?.kind != .service }
    guard undescribed.isEmpty else {
      throw DescriptorPoolError.undescribed(undescribed)
    }
    let service = ReflectionService(pool: pool, services: services)
    service.register(in: &router)
    router.registerBidirectional(Grpc_Reflection_V1Alpha_ServerReflection.Method.ServerReflectionInfo.descriptor.fullPath) {
      requests, context, writer in
      try await service.serverReflectionInfo(
        requests.map { try RequestDecoding.decode(Grpc_Reflection_V1_ServerReflectionRequest.self, $0) },
        writer: ResponseStreamWriter(writer), context: context)
    }
  }

  package func serverReflectionInfo(
    _ requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
    writer: ResponseStreamWriter<Grpc_Reflection_V1_ServerReflectionResponse>,
    context: ServerContext
  ) async throws {
    var sent: Set<String> = []
    for try await request in requests {
      try await writer.write(answer(request, sent: &sent))
    }
  }

  /// The answer to one request; `sent` holds the files this stream has already carried.
  package func answer(
    _ request: Grpc_Reflection_V1_ServerReflectionRequest,
    sent: inout Set<String>
  ) -> Grpc_Reflection_V1_ServerReflectionResponse {
    var response = Grpc_Reflection_V1_ServerReflectionResponse()
    response.validHost = request.host
    response.originalRequest = request
    func files(_ name: String?, notFound: @autoclosure () -> String) {
      guard let name else {
        response.messageResponse = .errorResponse(Self.error(.notFound, notFound()))
        return
      }
      response.messageResponse = .fileDescriptorResponse(fileResponse(name, sent: &sent))
    }
    switch request.messageRequest {
    case .fileByFilename(let name):
      files(pool.file(named: name) == nil ? nil : name, notFound: "file not found: \(name)")
    case .fileContainingSymbol(let symbol):
      files(pool.symbol(symbol)?.file, notFound: "symbol not found: \(symbol)")
    case .fileContainingExtension(let e):
      files(
        pool.fileContainingExtension(of: e.containingType, number: e.extensionNumber),
        notFound: "extension \(e.extensionNumber) of \(e.containingType) not found")
    case .allExtensionNumbersOfType(let type):
      if let numbers = pool.extensionNumbers(of: type) {
        var r = Grpc_Reflection_V1_ExtensionNumberResponse()
        r.baseTypeName = type
        r.extensionNumber = numbers
        response.messageResponse = .allExtensionNumbersResponse(r)
      } else {
        response.messageResponse = .errorResponse(Self.error(.notFound, "message type not found: \(type)"))
      }
    case .listServices:
      var r = Grpc_Reflection_V1_ListServiceResponse()
      r.service = services.map {
        var s = Grpc_Reflection_V1_ServiceResponse()
        s.name = $0
        return s
      }
      response.messageResponse = .listServicesResponse(r)
    case nil:
      response.messageResponse = .errorResponse(Self.error(.invalidArgument, "the request names no question (message_request is empty)"))
    }
    return response
  }

  /// The named file (always) and those of its transitive imports this stream has not carried yet.
  private func fileResponse(_ name: String, sent: inout Set<String>) -> Grpc_Reflection_V1_FileDescriptorResponse {
    var r = Grpc_Reflection_V1_FileDescriptorResponse()
    for (i, file) in pool.withDependencies(name).enumerated() where i == 0 || !sent.contains(file) {
      sent.insert(file)
      if let bytes = pool.serializedFile(named: file) { r.fileDescriptorProto.append(bytes) }
    }
    return r
  }

  private static func error(_ code: GRPCStatus.Code, _ message: String) -> Grpc_Reflection_V1_ErrorResponse {
    var e = Grpc_Reflection_V1_ErrorResponse()
    e.errorCode = Int32(code.rawValue)
    e.errorMessage = message
    return e
  }
}

extension DescriptorPoolError {
  /// Services a server registers that no descriptor declares.
  static func undescribed(_ services: [String]) -> DescriptorPoolError {
    DescriptorPoolError(.missingDependency, "no descriptor declares \(services.joined(separator: ", "))")
  }
}
