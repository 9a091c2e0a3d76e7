import Foundation
import MigrationVocabulary

/// The persistent environment behind `migauth`'s cmdlet-like commands: one JSON file.
///
/// ``save(_:)`` replaces the file crash-safely (``DurableFile``); callers save only accepted
/// changes, so a refused command leaves the file byte-identical.
public struct EnvironmentStore: Sendable {
    /// The file (`./.migauth-env.json` by default).
    public let path: String

    public init(path: String) { self.path = path }

    /// `$MIGAUTH_ENV` when set and not empty, else `./.migauth-env.json`.
    public static func defaultPath(environment: [String: String]) -> String {
        if let p = environment["MIGAUTH_ENV"], !p.isEmpty { return p }
        return ".migauth-env.json"
    }

    /// A problem reading or writing the store.
    public struct StoreError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let message: String
        /// For a file that is not valid JSON or not an environment: the line, column and field that are wrong.
        public internal(set) var problem: JSONDecodeProblem? = nil
        public var description: String {
            if let problem { return problem.message(file: path) + " (\(message))" }
            return "\(path): \(message)"
        }
    }

    /// Reads the environment; a missing file says how to create one.
    public func load() throws(StoreError) -> SimulatedEnvironment {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(path: path, message: "no environment here; create one with `migauth env init [--ldif FILE | --scenario FILE]`")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StoreError(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        do {
            let file = try JSONDecoder().decode(StoredEnvironment.self, from: data)
            guard file.format == StoredEnvironment.currentFormat else {
                throw StoreError(path: path, message: "format \(file.format) is not \(StoredEnvironment.currentFormat); recreate it with `migauth env init --force`")
            }
            return file.environment
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(path: path, message: "not a migauth environment file", problem: JSONDecodeProblem(error, in: data))
        }
    }

    /// Loads, changes and saves the environment under an exclusive lock (``FileLock``), so concurrent
    /// writers (20 `migauth new-vm` at once) each see the others' changes: none is lost, and a writer
    /// that cannot get the lock in time fails instead of reporting success. `body` returns whether to
    /// save. Temporary files of killed writers are removed while the lock is held.
    public func update<R>(_ body: (inout SimulatedEnvironment) throws -> (save: Bool, result: R)) throws -> R {
        let lock: FileLock?
        do { lock = try FileLock(for: path) } catch {
            throw StoreError(path: path, message: "cannot lock (another migauth still writing?): \(error.description)")
        }
        defer { withExtendedLifetime(lock) {} }
        if let resolved = try? DurableFile.resolvingSymlinks(path) { DurableFile.removeStaleTemporaries(of: resolved) }
        var environment = try load()
        let (save, result) = try body(&environment)
        if save { try write(environment) }
        return result
    }

    /// Writes the environment crash-safely (temp file, fsync, rename, fsync of the directory), under the lock.
    public func save(_ environment: SimulatedEnvironment) throws(StoreError) {
        let lock: FileLock?
        do { lock = try FileLock(for: path) } catch {
            throw StoreError(path: path, message: "cannot lock (another migauth still writing?): \(error.description)")
        }
        defer { withExtendedLifetime(lock) {} }
        if let resolved = try? DurableFile.resolvingSymlinks(path) { DurableFile.removeStaleTemporaries(of: resolved) }
        try write(environment)
    }

    private func write(_ environment: SimulatedEnvironment) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(StoredEnvironment(environment: environment)) } catch {
            throw StoreError(path: path, message: "cannot encode: \(error)")
        }
        do { try DurableFile.write(data, to: path) } catch {
            throw StoreError(path: path, message: error.description)
        }
    }
}

/// The file's top level: a format marker and the environment.
struct StoredEnvironment: Codable {
    static let currentFormat = "migauth-env/1"
    var format: String = currentFormat
    var environment: SimulatedEnvironment
}
