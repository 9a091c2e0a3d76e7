// swift-tools-version:6.1
// MigrationAuth — authenticate Hyper-V-style live-migration connections with real Kerberos
// (MIT GSSAPI) and CredSSP, and simulate an AD-style domain to test two-host sign-on scenarios.
//
// The target graph is drawn once, in docs/architecture.md, which must match this file exactly
// (`.ci/check-architecture`): change both together.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "MigrationAuth",
    products: [
        .library(name: "GSS", targets: ["GSS"]),
        .library(name: "TestRealm", targets: ["TestRealm"]),
        .library(name: "WindowsStatus", targets: ["WindowsStatus"]),
        .library(name: "MigrationVocabulary", targets: ["MigrationVocabulary"]),
        .library(name: "Directory", targets: ["Directory"]),
        .library(name: "Hosts", targets: ["Hosts"]),
        .library(name: "MigrationRules", targets: ["MigrationRules"]),
        .library(name: "Scenario", targets: ["Scenario"]),
        .library(name: "ClusterAudit", targets: ["ClusterAudit"]),
        .library(name: "DirectoryLDAP", targets: ["DirectoryLDAP"]),
        .library(name: "MigrationService", targets: ["MigrationService"]),
        .library(name: "CredSSP", targets: ["CredSSP"]),
        .library(name: "QEMU", targets: ["QEMU"]),
        .executable(name: "migauth", targets: ["migauth"]),
        .executable(name: "migauth-bench", targets: ["MigAuthBench"]),
        .executable(name: "kerberos-crypto-bench", targets: ["KerberosCryptoBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Added by the modules that need them (CredSSP, MigrationService):
        // swift-nio 2.101.2, swift-nio-extras 1.35.2, swift-nio-ssl 2.37.6, swift-asn1 1.7.4.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // CredSSP: DER (swift-asn1), in-memory TLS (swift-nio-ssl), SHA-256 (swift-crypto).
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // CredSSP: the server certificate's public key (X509's Certificate.publicKey).
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        // MigrationService: zlib compression of the migration stream.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        // migauth serve: ServiceGroup, graceful shutdown on SIGTERM/SIGINT, SIGHUP reloads.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // TestRealm: child programs (KDCs, slapd, kinit, daemons) started and awaited; FilePath/FileDescriptor.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C stays here: the module map over MIT GSSAPI/krb5 and one small shim header.
        .systemLibrary(name: "CGSSAPI", path: "Sources/CGSSAPI"),
        // OpenSSL 3 libcrypto for RFC 3961/3962/8009 per-message crypto (KerberosCrypto).
        .systemLibrary(name: "CLibCrypto", path: "Sources/CLibCrypto"),
        // zstd (Debian: libzstd-dev) for the Compression option on protocol 2 (MigrationService's ChunkCodec).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),

        .target(name: "WindowsStatus", swiftSettings: swiftSettings),
        // The words the simulator and the real stack share: stages, Hyper-V's texts, IPv4
        // subnets, the authentication and performance options, the VM-name rule.
        .target(name: "MigrationVocabulary", dependencies: ["WindowsStatus"], swiftSettings: swiftSettings),
        .target(
            name: "GSS",
            // NIOPosix: NIOThreadPool for the calls that wait for the KDC (GSSBlocking.swift).
            dependencies: ["CGSSAPI", "KerberosCrypto", "WindowsStatus",
                           .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings),
        // RFC 2849 syntax only (no schema, no C): read by Directory's importer and TestRealm's directory queries.
        .target(name: "LDIFFormat", swiftSettings: swiftSettings),
        .target(name: "TestRealm", dependencies: ["LDIFFormat", .product(name: "Logging", package: "swift-log"),
                                                  .product(name: "Subprocess", package: "swift-subprocess"),
                                                  .product(name: "SystemPackage", package: "swift-system")],
                swiftSettings: swiftSettings),
        .target(name: "Directory", dependencies: ["LDIFFormat", "WindowsStatus"], swiftSettings: swiftSettings),
        .target(name: "Hosts", dependencies: ["Directory", "MigrationVocabulary", "WindowsStatus"], swiftSettings: swiftSettings),
        .target(name: "MigrationRules", dependencies: ["Hosts", "Directory", "MigrationVocabulary", "WindowsStatus"],
                swiftSettings: swiftSettings),
        // OpenLDAP's libldap/liblber (Debian: libldap-dev, libsasl2-dev) for DirectoryLDAP only.
        .systemLibrary(name: "CLDAP", path: "Sources/CLDAP"),
        // A live AD read over LDAP (SASL GSSAPI, paged) into the LDIF importer's Directory.
        .target(name: "DirectoryLDAP", dependencies: ["CLDAP", "Directory", "WindowsStatus",
                                                   .product(name: "NIOPosix", package: "swift-nio")],
                swiftSettings: swiftSettings),
        // `migauth audit`: every host pair of a cluster, verdicts on PreparedWorld, text/JSON/HTML.
        .target(name: "ClusterAudit", dependencies: ["MigrationRules", "Hosts", "Directory", "WindowsStatus"],
                swiftSettings: swiftSettings),
        .target(
            name: "Scenario",
            dependencies: ["MigrationRules", "Hosts", "Directory", "WindowsStatus",
                           "MigrationVocabulary",  // JSONDecodeProblem: line, column and field of a bad environment file
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings),
        // QEMU guests a daemon owns: the process (posix_spawn, its own pid only) and its QMP monitor.
        .target(name: "QEMU",
                dependencies: [.product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOExtras", package: "swift-nio-extras")],
                swiftSettings: swiftSettings),
        .target(
            name: "MigrationService",
            dependencies: ["GSS", "CredSSP", "WindowsStatus", "MigrationVocabulary", "QEMU",
                           "KerberosCrypto",  // suite 2: AES-256-GCM (AES256GCM) for the migration stream
                           "CZstd",  // Compression on protocol 2: zstd chunks (ChunkCodec.swift)
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "CompressNIO", package: "compress-nio"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           // ServiceTLSIdentity: the self-signed RSA certificate made in memory (no key file).
                           .product(name: "_CryptoExtras", package: "swift-crypto"),
                           .product(name: "X509", package: "swift-certificates")],
            swiftSettings: swiftSettings),
        .target(
            name: "CredSSP",
            dependencies: ["GSS", "WindowsStatus",
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOTLS", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "X509", package: "swift-certificates")],
            swiftSettings: swiftSettings),
        // Real two-host runs: a real MIT KDC on LDAP provisioned from the simulated world, and
        // scenarios replayed against real processes (docs/real-scenarios.md).
        .target(name: "RealmProvisioning",
                dependencies: ["TestRealm", "Directory", "Hosts", "MigrationRules", "MigrationService"],
                swiftSettings: swiftSettings),
        .target(
            name: "RealScenario",
            dependencies: ["RealmProvisioning", "Scenario", "GSS", "TestRealm", "MigrationRules", "MigrationService",
                           "Hosts", "Directory", "WindowsStatus"],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "migauth",
            dependencies: ["Scenario", "MigrationRules", "Hosts", "Directory", "WindowsStatus", "MigrationService", "GSS",
                           "RealScenario", "ClusterAudit", "DirectoryLDAP",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "UnixSignals", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "MigAuthBench",
            dependencies: ["GSS", "TestRealm", "MigrationRules", "Directory", "MigrationService", "CredSSP",
                           "QEMU",
                           "KerberosCrypto",  // in-process AES-256-GCM figure (suite 2's limit)
                           "ClusterAudit",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOExtras", package: "swift-nio-extras"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           "TLSHandshakeAnchor"],  // the CredSSP bench's TLS anchor
            path: "Sources/MigAuthBench",
            swiftSettings: swiftSettings),
        // Bench only: a bare BoringSSL TLS 1.3 handshake (the CredSSP bench's anchor), apart from OpenSSL's headers.
        .target(name: "TLSHandshakeAnchor", dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")],
                swiftSettings: swiftSettings),

        // RFC 4121 per-message tokens (wrap/MIC) on OpenSSL 3; see docs/fast-protection.md.
        .target(name: "KerberosCrypto", dependencies: ["CLibCrypto", "WindowsStatus"],
                swiftSettings: swiftSettings),
        // Not a product: MIT-vs-ours interop contexts, raw AES-CTS and the wrap/unwrap loop for
        // KerberosCryptoTests and kerberos-crypto-bench only.
        .target(name: "KerberosCryptoTestSupport", dependencies: ["KerberosCrypto", "GSS", "CGSSAPI"],
                swiftSettings: swiftSettings),
        // Not a product: the one seeded generator (SplitMix64) and the one in-memory GSS
        // establishment loop of the test targets and kerberos-crypto-bench.
        .target(name: "TestSupport", dependencies: ["GSS", .product(name: "NIOPosix", package: "swift-nio")],
                swiftSettings: swiftSettings),
        .executableTarget(name: "KerberosCryptoBench",
                          dependencies: ["KerberosCrypto", "KerberosCryptoTestSupport", "TestSupport", "GSS", "TestRealm"],
                          swiftSettings: swiftSettings),
        .testTarget(name: "KerberosCryptoTests",
                    dependencies: ["KerberosCrypto", "KerberosCryptoTestSupport", "TestSupport", "GSS", "TestRealm", "CGSSAPI",
                                   .product(name: "Crypto", package: "swift-crypto")],  // AES.GCM cross-check
                    swiftSettings: swiftSettings,
                    linkerSettings: [.linkedLibrary("k5crypto")]),  // krb5_c_* for the MIT crypto cross-check

        .testTarget(name: "WindowsStatusTests", dependencies: ["WindowsStatus"], swiftSettings: swiftSettings),
        .testTarget(name: "GSSTests", dependencies: ["GSS", "TestRealm", "TestSupport", "WindowsStatus"],
                    exclude: ["peer"],  // python-gssapi peer scripts (PseudoRandomTests)
                    swiftSettings: swiftSettings),
        .testTarget(name: "TestRealmTests", dependencies: ["TestRealm"], swiftSettings: swiftSettings),
        .testTarget(name: "DirectoryTests", dependencies: ["Directory", "WindowsStatus"], swiftSettings: swiftSettings),
        .testTarget(name: "MigrationRulesTests", dependencies: ["MigrationRules", "Hosts", "Directory", "WindowsStatus"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "DirectoryLDAPTests", dependencies: ["DirectoryLDAP", "Directory", "WindowsStatus"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ClusterAuditTests", dependencies: ["ClusterAudit", "MigrationRules", "Hosts", "Directory"],
                    swiftSettings: swiftSettings),
        // ScenarioTests also runs the built `migauth` executable (SwiftPM builds it alongside).
        .testTarget(name: "ScenarioTests", dependencies: ["Scenario", "MigrationRules", "Hosts", "Directory"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "RealmProvisioningTests",
                    dependencies: ["RealmProvisioning", "TestRealm", "MigrationRules", "MigrationService", "Hosts", "Directory"],
                    swiftSettings: swiftSettings),
        // RealScenarioTests also runs the built `migauth` executable.
        .testTarget(name: "RealScenarioTests",
                    dependencies: ["RealScenario", "RealmProvisioning", "Scenario", "TestRealm", "MigrationRules"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "MigrationServiceTests",
                    dependencies: ["MigrationService", "CredSSP", "TestRealm", "GSS", "MigrationRules", "Hosts", "WindowsStatus",
                                   "QEMU",
                                   .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "NIOEmbedded", package: "swift-nio"),
                                   .product(name: "NIOTestUtils", package: "swift-nio")],
                    exclude: ["peer"],  // the independent python suite-2 source (IndependentPeerTests)
                    swiftSettings: swiftSettings),
        .testTarget(name: "LDIFFormatTests", dependencies: ["LDIFFormat"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CredSSPTests",
            dependencies: ["CredSSP", "TestRealm", "TestSupport", "GSS", "WindowsStatus",
                           .product(name: "SwiftASN1", package: "swift-asn1"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOExtras", package: "swift-nio-extras"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["peer"],
            swiftSettings: swiftSettings),
    ]
)

// libFuzzer targets (docs/fuzzing.md), one per decoder of outside bytes. They have no `main` of their own
// (libFuzzer's comes with `-sanitize=fuzzer`), so they exist only when MIGAUTH_FUZZ=1:
//   MIGAUTH_FUZZ=1 swift build -sanitize=fuzzer --scratch-path .build-fuzz --product FuzzFrames
// (.ci/fuzz-smoke builds and runs all of them). The plain `swift build --build-tests` never sees them.
if Context.environment["MIGAUTH_FUZZ"] == "1" {
    package.targets += [
        .executableTarget(name: "FuzzFrames",
                          dependencies: ["MigrationService", .product(name: "NIOCore", package: "swift-nio"),
                                         .product(name: "NIOEmbedded", package: "swift-nio")],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzWireMessage",
                          dependencies: ["MigrationService", .product(name: "NIOCore", package: "swift-nio")],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzTSRequest",
                          dependencies: ["CredSSP", .product(name: "SwiftASN1", package: "swift-asn1")],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzRFC4121", dependencies: ["KerberosCrypto"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzLDIF", dependencies: ["Directory"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzScenarioYAML", dependencies: ["Scenario"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzHostJSON", dependencies: ["MigrationService", "MigrationVocabulary"],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzEnvironmentJSON", dependencies: ["Scenario", "MigrationVocabulary"],
                          swiftSettings: swiftSettings),
    ]
}
