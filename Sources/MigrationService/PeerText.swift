/// Text that crosses a trust boundary: what a daemon sends to a peer names no server path, and
/// what a peer sent is made harmless before it is logged.
enum PeerText {
    /// The longest peer-supplied text written to a log line (longer text is cut, marked `…`).
    static let maximumLoggedLength = 512

    /// `text` with every absolute path replaced by its last component (`/srv/b/vms/.staging/vm1.partial`
    /// → `vm1.partial`). A path starts with `/` at the start of the text or after a space, quote,
    /// bracket, `=` or `:`, and runs to the next space or quote.
    static func withoutPaths(_ text: String) -> String {
        guard text.contains("/") else { return text }
        let starters: Set<Character> = [" ", "\t", "\n", "'", "\"", "`", "(", "[", "<", "=", ":"]
        let enders: Set<Character> = [" ", "\t", "\n", "'", "\"", "`", ")", "]", ">", ","]
        var out = ""
        out.reserveCapacity(text.count)
        var previous: Character? = nil
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if c == "/", previous.map(starters.contains) ?? true {
                var end = index
                while end < text.endIndex, !enders.contains(text[end]) { end = text.index(after: end) }
                var path = text[index..<end]
                // Trailing sentence punctuation is not part of the path.
                var tail = ""
                while let last = path.last, last == "." || last == ";" || last == ":" {
                    tail = String(last) + tail
                    path = path.dropLast()
                }
                let components = path.split(separator: "/")
                out += components.last.map(String.init) ?? "/"
                out += tail
                previous = text[text.index(before: end)]
                index = end
                continue
            }
            out.append(c)
            previous = c
            index = text.index(after: index)
        }
        return out
    }

    /// `text` (from a peer) fit for one log line: control characters (newlines included) escaped as
    /// `\n`, `\u{1B}`…, at most about ``maximumLoggedLength`` characters.
    static func forLog(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            guard out.unicodeScalars.count < maximumLoggedLength else {
                out += "…"
                break
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                    || scalar == "\u{2028}" || scalar == "\u{2029}" {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
