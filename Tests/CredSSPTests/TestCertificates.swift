import Foundation
import NIOSSL

/// Self-signed and CA-issued RSA certificates made with `openssl` in a temporary directory once per run, loaded
/// into memory; the directory is removed at once.
struct TestCertificates: Sendable {
    let selfSignedChain: [NIOSSLCertificate]
    let selfSignedKey: NIOSSLPrivateKey
    /// The CA certificate (PEM); ``withCAFile(_:)`` puts it in a file for the duration of a call.
    let caPEM: Data
    let issuedChain: [NIOSSLCertificate]
    let issuedKey: NIOSSLPrivateKey
    static let hostname = "hostb.test"

    static let shared: Result<TestCertificates, any Error> = Result { try TestCertificates() }

    static func get() throws -> TestCertificates { try shared.get() }

    private init() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("credssp-certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=\(Self.hostname)",
                          "-keyout", "\(dir)/self.key", "-out", "\(dir)/self.pem"])
        try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=MigrationAuth Test CA",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                          "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem"])
        try Self.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(Self.hostname)",
                          "-keyout", "\(dir)/leaf.key", "-out", "\(dir)/leaf.csr"])
        try "subjectAltName=DNS:\(Self.hostname)\n".write(toFile: "\(dir)/ext.cnf", atomically: true, encoding: .utf8)
        try Self.openssl(["x509", "-req", "-in", "\(dir)/leaf.csr", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key",
                          "-CAcreateserial", "-days", "2", "-extfile", "\(dir)/ext.cnf", "-out", "\(dir)/leaf.pem"])
        selfSignedChain = try NIOSSLCertificate.fromPEMFile("\(dir)/self.pem")
        selfSignedKey = try NIOSSLPrivateKey(file: "\(dir)/self.key", format: .pem)
        caPEM = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/ca.pem"))
        issuedChain = try NIOSSLCertificate.fromPEMFile("\(dir)/leaf.pem")
        issuedKey = try NIOSSLPrivateKey(file: "\(dir)/leaf.key", format: .pem)
    }

    /// Calls `body` with the path of a temporary file that holds the CA certificate, removed afterwards.
    func withCAFile<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("credssp-ca-\(UUID().uuidString).pem").path
        try caPEM.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    struct OpenSSLFailed: Error, CustomStringConvertible {
        let arguments: [String]
        var description: String { "openssl \(arguments.joined(separator: " ")) failed" }
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw OpenSSLFailed(arguments: arguments) }
    }
}
