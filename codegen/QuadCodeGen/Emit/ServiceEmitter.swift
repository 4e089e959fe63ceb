internal import QuadProtobuf

/// Renders one service's server side: a protocol with one `async` method per RPC and its
/// registration with a `QuadRPC.Router`.
struct ServiceEmitter {
  let table: TypeTable
  let comments: Comments
  let visibility: String

  /// The Swift name of an RPC's handler method (`GetStudent` → `getStudent`).
  static func functionName(_ rpc: String) -> String {
    var n = Naming.lowerCamel(rpc)
    if n == "register" || n == "client" { n += "Method" }
    return Naming.swiftKeywords.contains(n) ? "`\(n)`" : n
  }

  /// The protocol, inside the service's namespace enum.
  func emitProtocol(_ s: Google_Protobuf_ServiceDescriptorProto, path: [Int32], into p: CodePrinter) {
    let vis = visibility
    p.line("/// The server side of the service: implement it, then `register(in:)` a router.")
    p.line("\(vis)protocol ServiceProtocol: Swift.Sendable {")
    p.indent {
      for (mi, m) in s.method.enumerated() {
        let input = table[protoName: m.inputType].swiftName
        let output = table[protoName: m.outputType].swiftName
        let f = Self.functionName(m.name)
        p.raw(comments.doc(path + [2, Int32(mi)], indent: p.indentString))
        switch (m.clientStreaming, m.serverStreaming) {
        case (false, false):
          p.line("func \(f)(_ request: \(input), context: QuadRPC.ServerContext) async throws -> \(output)")
        case (false, true):
          p.line("func \(f)(_ request: \(input), writer: QuadRPC.ResponseStreamWriter<\(output)>, context: QuadRPC.ServerContext) async throws")
        case (true, false):
          p.line("func \(f)(_ requests: QuadRPC.RequestStream<\(input)>, context: QuadRPC.ServerContext) async throws -> \(output)")
        case (true, true):
          p.line("func \(f)(_ requests: QuadRPC.RequestStream<\(input)>, writer: QuadRPC.ResponseStreamWriter<\(output)>, context: QuadRPC.ServerContext) async throws")
        }
      }
    }
    p.line("}")
  }

  /// The typed client, inside the service's namespace enum.
  func emitClient(_ s: Google_Protobuf_ServiceDescriptorProto, path: [Int32], methodNames: [String], into p: CodePrinter) {
    let vis = visibility
    p.line("/// A typed client for the service, over a `QuadRPC.GRPCClient`.")
    p.line("\(vis)struct Client: Swift.Sendable {")
    p.indent {
      p.line("\(vis)let client: QuadRPC.GRPCClient")
      p.line()
      p.line("\(vis)init(_ client: QuadRPC.GRPCClient) {")
      p.indent { p.line("self.client = client") }
      p.line("}")
      for (mi, m) in s.method.enumerated() {
        let input = table[protoName: m.inputType].swiftName
        let output = table[protoName: m.outputType].swiftName
        let f = Self.functionName(m.name)
        let methodPath = "Method.\(methodNames[mi]).descriptor.fullPath"
        let options = "options: QuadRPC.CallOptions = QuadRPC.CallOptions()"
        p.line()
        p.raw(comments.doc(path + [2, Int32(mi)], indent: p.indentString))
        switch (m.clientStreaming, m.serverStreaming) {
        case (false, false):
          p.line("\(vis)func \(f)(_ request: \(input), \(options)) async throws -> \(output) {")
          p.indent {
            p.line("try await client.unary(\(methodPath), request: request, responseType: \(output).self, options: options).message")
          }
        case (false, true):
          p.line("\(vis)func \(f)<R: Swift.Sendable>(")
          p.indent {
            p.line("_ request: \(input),")
            p.line("\(options),")
            p.line("_ body: (QuadRPC.ResponseStream<\(output)>) async throws -> R")
          }
          p.line(") async throws -> R {")
          p.indent {
            p.line("try await client.serverStreaming(\(methodPath), request: request, responseType: \(output).self, options: options, body)")
          }
        case (true, false):
          p.line("\(vis)func \(f)(")
          p.indent {
            p.line("\(options),")
            p.line("_ body: (QuadRPC.RequestWriter<\(input)>) async throws -> Swift.Void")
          }
          p.line(") async throws -> \(output) {")
          p.indent {
            p.line("try await client.clientStreaming(\(methodPath), requestType: \(input).self, responseType: \(output).self, options: options, body).message")
          }
        case (true, true):
          p.line("\(vis)func \(f)<R: Swift.Sendable>(")
          p.indent {
            p.line("\(options),")
            p.line("_ body: (QuadRPC.RequestWriter<\(input)>, QuadRPC.ResponseStream<\(output)>) async throws -> R")
          }
          p.line(") async throws -> R {")
          p.indent {
            p.line("try await client.bidirectional(\(methodPath), requestType: \(input).self, responseType: \(output).self, options: options, body)")
          }
        }
        p.line("}")
      }
    }
    p.line("}")
  }

  /// The registration, after the namespace enum.
  func emitRegistration(_ s: Google_Protobuf_ServiceDescriptorProto, namespace: String, methodNames: [String], into p: CodePrinter) {
    let vis = visibility
    p.line("extension \(namespace).ServiceProtocol {")
    p.indent {
      p.line("/// Registers every method of the service with `router`.")
      p.line("\(vis)func register(in router: inout QuadRPC.Router) {")
      p.indent {
        for (mi, m) in s.method.enumerated() {
          let input = table[protoName: m.inputType].swiftName
          let f = Self.functionName(m.name)
          let path = "\(namespace).Method.\(methodNames[mi]).descriptor.fullPath"
          let decode = "QuadRPC.RequestDecoding.decode(\(input).self, $0)"
          switch (m.clientStreaming, m.serverStreaming) {
          case (false, false):
            p.line("router.registerUnary(\(path)) { request, context in")
            p.indent {
              p.line("try await self.\(f)(QuadRPC.RequestDecoding.decode(\(input).self, request), context: context).serializedBytes()")
            }
          case (false, true):
            p.line("router.registerServerStreaming(\(path)) { request, context, writer in")
            p.indent {
              p.line("try await self.\(f)(QuadRPC.RequestDecoding.decode(\(input).self, request), writer: QuadRPC.ResponseStreamWriter(writer), context: context)")
            }
          case (true, false):
            p.line("router.registerClientStreaming(\(path)) { requests, context in")
            p.indent {
              p.line("try await self.\(f)(requests.map { try \(decode) }, context: context).serializedBytes()")
            }
          case (true, true):
            p.line("router.registerBidirectional(\(path)) { requests, context, writer in")
            p.indent {
              p.line("try await self.\(f)(requests.map { try \(decode) }, writer: QuadRPC.ResponseStreamWriter(writer), context: context)")
            }
          }
          p.line("}")
        }
      }
      p.line("}")
    }
    p.line("}")
    p.line()
  }
}
