import Foundation
import Yams

/// A YAML node together with where it is (file, line, column) and its path in the document.
///
/// The scenario reader walks the document through these so that every error names the file,
/// line and field; mappings are read strictly (unknown keys are errors), like a JSON schema
/// with `additionalProperties: false`.
struct YAMLField {
    let node: Node
    let path: String
    let file: String

    func error(_ message: String) -> ScenarioError {
        ScenarioError(file: file, line: node.mark?.line, column: node.mark?.column, field: path, message: message)
    }

    /// Parses `text` into its root field (an empty document is an error).
    static func root(yaml text: String, file: String) throws(ScenarioError) -> YAMLField {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ScenarioError(file: file, line: 1, column: 1, message: "the document is empty")
            }
            return YAMLField(node: node, path: "", file: file)
        } catch let e as ScenarioError {
            throw e
        } catch let e as YamlError {
            throw Self.translate(e, file: file)
        } catch {
            throw ScenarioError(file: file, message: "cannot parse YAML: \(error)")
        }
    }

    private static func translate(_ e: YamlError, file: String) -> ScenarioError {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "malformed YAML: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            return ScenarioError(file: file, line: mark.line, column: mark.column, message: message)
        case let .duplicatedKeysInMapping(duplicates, context):
            return ScenarioError(file: file, line: context.mark.line, column: context.mark.column,
                                 message: "duplicate key(s) \(duplicates.joined(separator: ", ")) in a mapping")
        case let .reader(problem, _, _, _):
            return ScenarioError(file: file, message: "cannot read YAML: \(problem)")
        default:
            return ScenarioError(file: file, message: "malformed YAML: \(e)")
        }
    }

    private func child(_ node: Node, _ component: String) -> YAMLField {
        YAMLField(node: node, path: path.isEmpty ? component : "\(path).\(component)", file: file)
    }

    // MARK: Mappings

    /// The node as a mapping whose keys must all be in `allowed` and include all of `required`.
    func mapping(allowed: [String], required: [String] = []) throws(ScenarioError) -> YAMLMapping {
        var fields: [String: YAMLField] = [:]
        var order: [String] = []
        for (k, v) in try pairs() {
            guard case let .scalar(s) = k else { throw error("mapping keys must be plain strings") }
            let key = s.string
            let keyField = YAMLField(node: k, path: path.isEmpty ? key : "\(path).\(key)", file: file)
            guard allowed.contains(key) else {
                let hint = Self.closest(key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                throw keyField.error("unknown key '\(key)'\(hint); allowed: \(allowed.joined(separator: ", "))")
            }
            guard fields[key] == nil else { throw keyField.error("duplicate key '\(key)'") }
            fields[key] = child(v, key)
            order.append(key)
        }
        for r in required where fields[r] == nil {
            throw error("missing required key '\(r)'")
        }
        return YAMLMapping(owner: self, fields: fields, order: order)
    }

    /// The mapping's pairs with YAML merge keys (`<<: *defaults`) expanded: merged pairs come
    /// first and keys written in the mapping itself override them.
    func pairs() throws(ScenarioError) -> [(Node, Node)] {
        guard case let .mapping(m) = node else { throw error("expected a mapping (key: value), found \(kind)") }
        var own: [(Node, Node)] = []
        var merged: [(Node, Node)] = []
        for (k, v) in m {
            guard case let .scalar(s) = k, s.string == "<<", s.style == .plain else {
                own.append((k, v))
                continue
            }
            let sources: [Node]
            switch v {
            case .mapping: sources = [v]
            case let .sequence(seq): sources = Array(seq)
            default: throw YAMLField(node: v, path: path, file: file).error("'<<' must merge a mapping or a list of mappings")
            }
            for src in sources {
                guard case let .mapping(sm) = src else {
                    throw YAMLField(node: src, path: path, file: file).error("'<<' must merge a mapping or a list of mappings")
                }
                for (mk, mv) in sm where !merged.contains(where: { $0.0 == mk }) { merged.append((mk, mv)) }
            }
        }
        let ownKeys = Set(own.map(\.0))
        return merged.filter { !ownKeys.contains($0.0) } + own
    }

    /// The node as a mapping with free-form string keys (for example local group → members).
    func dictionary() throws(ScenarioError) -> [(key: String, value: YAMLField)] {
        var out: [(String, YAMLField)] = []
        var seen = Set<String>()
        for (k, v) in try pairs() {
            guard case let .scalar(s) = k else { throw error("mapping keys must be plain strings") }
            guard seen.insert(s.string).inserted else {
                throw YAMLField(node: k, path: path, file: file).error("duplicate key '\(s.string)'")
            }
            out.append((s.string, child(v, s.string)))
        }
        return out
    }

    // MARK: Sequences

    /// The node as a list; a single scalar is accepted as a one-element list when `allowSingle`.
    func list(allowSingle: Bool = false) throws(ScenarioError) -> [YAMLField] {
        switch node {
        case let .sequence(s):
            return s.enumerated().map { i, n in YAMLField(node: n, path: "\(path)[\(i)]", file: file) }
        case .scalar where allowSingle:
            return [self]
        default:
            throw error("expected a list, found \(kind)")
        }
    }

    // MARK: Scalars

    func string() throws(ScenarioError) -> String {
        guard case let .scalar(s) = node else { throw error("expected a string, found \(kind)") }
        return s.string
    }

    func nonEmptyString() throws(ScenarioError) -> String {
        let s = try string()
        guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw error("must not be empty") }
        return s
    }

    func int(min: Int? = nil, max: Int? = nil) throws(ScenarioError) -> Int {
        guard case .scalar = node, let v = node.int else { throw error("expected an integer, found \(describe)") }
        if let min, v < min { throw error("must be at least \(min), found \(v)") }
        if let max, v > max { throw error("must be at most \(max), found \(v)") }
        return v
    }

    func bool() throws(ScenarioError) -> Bool {
        guard case .scalar = node, let v = node.bool else { throw error("expected true or false, found \(describe)") }
        return v
    }

    func strings(allowSingle: Bool = true) throws(ScenarioError) -> [String] {
        var out: [String] = []
        for item in try list(allowSingle: allowSingle) { out.append(try item.nonEmptyString()) }
        return out
    }

    /// One of `choices` (compared case-insensitively, `_` and `-` alike); returns the canonical choice.
    func choice(_ choices: [String]) throws(ScenarioError) -> String {
        let s = try string()
        let norm = Self.normalize(s)
        if let c = choices.first(where: { Self.normalize($0) == norm }) { return c }
        throw error("'\(s)' is not one of: \(choices.joined(separator: ", "))")
    }

    var kind: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case let .scalar(s): s.string.isEmpty ? "an empty value" : "the scalar '\(s.string)'"
        }
    }

    private var describe: String { kind }

    static func normalize(_ s: String) -> String {
        String(s.lowercased().map { $0 == "_" || $0 == " " ? "-" : $0 })
    }

    /// The allowed key nearest to `key` by edit distance, when it is close.
    static func closest(_ key: String, in allowed: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var prev = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return a.isEmpty ? b.count : prev[b.count]
        }
        let k = Array(key.lowercased())
        let best = allowed.map { ($0, distance(k, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= Swift.max(2, key.count / 3) else { return nil }
        return best.0
    }
}

/// A strictly-checked YAML mapping (see ``YAMLField/mapping(allowed:required:)``).
struct YAMLMapping {
    let owner: YAMLField
    let fields: [String: YAMLField]
    /// Keys in document order.
    let order: [String]

    subscript(key: String) -> YAMLField? { fields[key] }

    func required(_ key: String) throws(ScenarioError) -> YAMLField {
        guard let f = fields[key] else { throw owner.error("missing required key '\(key)'") }
        return f
    }

    func error(_ message: String) -> ScenarioError { owner.error(message) }

    /// Exactly one of `keys` must be present; returns it.
    func exactlyOne(of keys: [String]) throws(ScenarioError) -> (String, YAMLField) {
        let present = keys.filter { fields[$0] != nil }
        guard present.count == 1, let k = present.first, let f = fields[k] else {
            if present.isEmpty { throw owner.error("needs one of: \(keys.joined(separator: ", "))") }
            throw owner.error("has both \(present.joined(separator: " and ")); give only one")
        }
        return (k, f)
    }
}
