/// Accumulates generated Swift text with two-space indentation.
final class CodePrinter {
  init() {}

  private(set) var text = ""
  private(set) var indentString = ""

  func line(_ s: String = "") {
    if s.isEmpty {
      text += "\n"
    } else {
      text += indentString + s + "\n"
    }
  }

  /// Appends pre-indented text as is.
  func raw(_ s: String) { text += s }

  func indent(_ body: () -> Void) {
    indentString += "  "
    body()
    indentString.removeLast(2)
  }
}
