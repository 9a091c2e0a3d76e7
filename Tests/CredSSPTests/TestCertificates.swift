import Foundation
import NIOSSL

/// Self-signed and CA-issued RSA certificates made with `openssl` in a temporary directory, once per run.
struct TestCertificates: Sendable {
    let directory: String
    let selfSignedChain: [NIOSSLCertificate]
    let selfSignedKey: NIOSSLPrivateKey
    let caFile: String
    let issuedChain: [NIOSSLCertificate]
    let issuedKey: NIOSSLPrivateKey
    static let hostname = "hostb.test"

    static let shared: Result<TestCertificates, any Error> = Result { try TestCertificates() }

    static func get() throws -> TestCertificates { try shared.get() }

    private init() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("credssp-certs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        directory = dir
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
        caFile = "\(dir)/ca.pem"
        issuedChain = try NIOSSLCertificate.fromPEMFile("\(dir)/leaf.pem")
        issuedKey = try NIOSSLPrivateKey(file: "\(dir)/leaf.key", format: .pem)
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
