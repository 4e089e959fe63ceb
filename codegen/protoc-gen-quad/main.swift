// protoc-gen-quad: reads a CodeGeneratorRequest on stdin, writes a CodeGeneratorResponse on stdout.
internal import Foundation
internal import QuadCodeGen

let input = FileHandle.standardInput.readDataToEndOfFile()
let output = Generator.run(requestBytes: [UInt8](input))
FileHandle.standardOutput.write(Data(output))
