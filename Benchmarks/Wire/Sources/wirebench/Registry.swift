import ImplQuad
import ImplSwiftProtobuf
import WireBenchKit

/// The implementations timed side by side; the first is the baseline of the ratio column.
let allImplementations: [Implementation] = [
  SwiftProtobufImpl.implementation,
  QuadImpl.implementation,
]
