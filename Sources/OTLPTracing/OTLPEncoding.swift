internal import Instrumentation
internal import Tracing
internal import W3CTraceContext

/// Spans, attributes and ids in their OTLP form.
enum OTLPEncoding {
  static func span(
    _ own: SpanContext, parent: SpanContext?, kind: SpanKind, start: UInt64, end: UInt64, state s: QuadSpan.State
  ) -> Opentelemetry_Proto_Trace_V1_Span {
    var span = Opentelemetry_Proto_Trace_V1_Span()
    span.traceId = bytes(own.trace.traceID)
    span.spanId = bytes(own.trace.spanID)
    span.traceState = own.trace.traceStateHeaderValue ?? ""
    if let parent {
      span.parentSpanId = bytes(parent.trace.spanID)
    }
    span.flags = flags(own.trace.flags, remoteParent: parent?.isRemote)
    span.name = s.name
    span.kind = Self.kind(kind)
    span.startTimeUnixNano = start
    span.endTimeUnixNano = max(start, end)
    (span.attributes, span.droppedAttributesCount) = attributes(s.attributes)
    for event in s.events.prefix(QuadSpan.limit) {
      var e = Opentelemetry_Proto_Trace_V1_Span.Event()
      e.timeUnixNano = event.nanosecondsSinceEpoch
      e.name = event.name
      (e.attributes, e.droppedAttributesCount) = attributes(event.attributes)
      span.events.append(e)
    }
    span.droppedEventsCount = UInt32(clamping: max(0, s.events.count - QuadSpan.limit))
    for link in s.links.prefix(QuadSpan.limit) {
      guard let linked = link.context.spanContext else { continue }
      var l = Opentelemetry_Proto_Trace_V1_Span.Link()
      l.traceId = bytes(linked.trace.traceID)
      l.spanId = bytes(linked.trace.spanID)
      l.traceState = linked.trace.traceStateHeaderValue ?? ""
      l.flags = flags(linked.trace.flags, remoteParent: linked.isRemote)
      (l.attributes, l.droppedAttributesCount) = attributes(link.attributes)
      span.links.append(l)
    }
    span.droppedLinksCount = UInt32(clamping: max(0, s.links.count - QuadSpan.limit))
    if let status = s.status {
      var st = Opentelemetry_Proto_Trace_V1_Status()
      st.code = status.code == .ok ? .ok : .error
      st.message = status.message ?? ""
      span.status = st
    }
    return span
  }

  static func bytes(_ id: TraceID) -> [UInt8] { withUnsafeBytes(of: id.bytes) { Array($0) } }
  static func bytes(_ id: SpanID) -> [UInt8] { withUnsafeBytes(of: id.bytes) { Array($0) } }

  /// The W3C flags, and bits 8-9 (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE / IS_REMOTE) when the parent's
  /// origin is known.
  static func flags(_ flags: TraceFlags, remoteParent: Bool?) -> UInt32 {
    var f = UInt32(flags.rawValue)
    if let remoteParent {
      f |= 0x100
      if remoteParent { f |= 0x200 }
    }
    return f
  }

  static func kind(_ kind: SpanKind) -> Opentelemetry_Proto_Trace_V1_Span.SpanKind {
    switch kind {
    case .server: return .server
    case .client: return .client
    case .producer: return .producer
    case .consumer: return .consumer
    case .internal: return .internal
    }
  }

  static func attributes(_ attributes: SpanAttributes) -> ([Opentelemetry_Proto_Common_V1_KeyValue], UInt32) {
    var out: [Opentelemetry_Proto_Common_V1_KeyValue] = []
    var dropped: UInt32 = 0
    attributes.forEach { key, value in
      guard out.count < QuadSpan.limit else {
        dropped += 1
        return
      }
      out.append(keyValue(key, value))
    }
    out.sort { $0.key < $1.key }
    return (out, dropped)
  }

  static func keyValue(_ key: String, _ value: SpanAttribute) -> Opentelemetry_Proto_Common_V1_KeyValue {
    var kv = Opentelemetry_Proto_Common_V1_KeyValue()
    kv.key = key
    kv.value = anyValue(value)
    return kv
  }

  static func keyValue(_ key: String, _ value: String) -> Opentelemetry_Proto_Common_V1_KeyValue {
    keyValue(key, .string(value))
  }

  static func anyValue(_ value: SpanAttribute) -> Opentelemetry_Proto_Common_V1_AnyValue {
    var v = Opentelemetry_Proto_Common_V1_AnyValue()
    func array(_ values: [Opentelemetry_Proto_Common_V1_AnyValue]) -> Opentelemetry_Proto_Common_V1_AnyValue.OneOf_Value {
      var a = Opentelemetry_Proto_Common_V1_ArrayValue()
      a.values = values
      return .arrayValue(a)
    }
    func scalar(_ value: Opentelemetry_Proto_Common_V1_AnyValue.OneOf_Value) -> Opentelemetry_Proto_Common_V1_AnyValue {
      var v = Opentelemetry_Proto_Common_V1_AnyValue()
      v.value = value
      return v
    }
    switch value {
    case .int32(let n): v.value = .intValue(Int64(n))
    case .int64(let n): v.value = .intValue(n)
    case .double(let d): v.value = .doubleValue(d)
    case .bool(let b): v.value = .boolValue(b)
    case .string(let s): v.value = .stringValue(s)
    case .stringConvertible(let s): v.value = .stringValue(s.description)
    case .int32Array(let a): v.value = array(a.map { scalar(.intValue(Int64($0))) })
    case .int64Array(let a): v.value = array(a.map { scalar(.intValue($0)) })
    case .doubleArray(let a): v.value = array(a.map { scalar(.doubleValue($0)) })
    case .boolArray(let a): v.value = array(a.map { scalar(.boolValue($0)) })
    case .stringArray(let a): v.value = array(a.map { scalar(.stringValue($0)) })
    case .stringConvertibleArray(let a): v.value = array(a.map { scalar(.stringValue($0.description)) })
    default: v.value = .stringValue(String(describing: value))
    }
    return v
  }
}
