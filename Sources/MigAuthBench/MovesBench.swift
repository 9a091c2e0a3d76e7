import Foundation
import GSS
import MigrationService
import TestRealm

/// `migauth-bench moves`: memory kept per move. Sequential small moves (a sign-on, a connection, CredSSP or
/// Kerberos, the sealed file, `commit`) from a `MigrationSource` to a `MigrationDestination` in this process — the
/// code the daemons run — with the process's resident set sampled as they go. A steady state is flat; memory kept
/// per move shows as a slope (issue 15: 600 CredSSP moves once grew a source daemon 47.6 → 93.0 MB).
///
/// Usage: `migauth-bench moves [--moves N] [--warm-up W] [--every K] [--kind credssp|kerberos] [--kilobytes S]`
enum MovesBench {
    static func run(_ arguments: [String]) async throws {
        let (moves, warmUp, every, kind, kilobytes) = try parse(arguments)
        let loadBefore = ServiceBench.loadAverage()
        try await TestRealm.withRealm { realm in
            let lab = try await BenchRealm.prepare(realm)
            let fqdn = BenchRealm.fqdn, ccache = lab.ccache
            let work = realm.directory + "/moves-bench"
            let destination = MigrationDestination(configuration: lab.destinationConfiguration(vmDirectory: work + "/dst"))
            destination.offerCredSSP(try ServiceTLSIdentity.generate(commonName: fqdn))
            let endpoint = try await destination.start(on: ServiceEndpoint(address: "127.0.0.12", port: 0))
            let target = MigrationTarget(fqdn: fqdn, endpoint: endpoint, realm: realm.name)
            let source = try MigrationSource(localAddress: "127.0.0.11", vmDirectory: work + "/src")
            let sourceStore = VMStore(directory: work + "/src")
            let destinationStore = VMStore(directory: work + "/dst")
            let contents = [UInt8](repeating: 0x5A, count: kilobytes << 10)
            let kerberos = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))

            /// One move, as a user does it: (CredSSP) a sign-on on the source, the move, the sign-off.
            func move(_ index: Int) async throws {
                let vm = "rss-\(index)"
                try sourceStore.create(vm, contents: contents)
                let options = MoveOptions(performance: .tcpIP, channels: 1)
                if kind == "credssp" {
                    let user = try await SignOnCredentials.signOn(user: BenchRealm.user, realm: realm.name, password: BenchRealm.password,
                                                                  destination: fqdn)
                    defer { user.wipe() }
                    _ = try await source.move(vm: vm, to: target, authentication: .credSSP(user), options: options)
                } else {
                    _ = try await source.move(vm: vm, to: target, credential: kerberos, options: options)
                }
                try FileManager.default.removeItem(atPath: destinationStore.path(of: vm))
            }

            let clock = ContinuousClock()
            for i in 0..<warmUp { try await move(i) }
            let base = CredSSPBench.residentBytes()
            var samples: [(moves: Int, bytes: Int)] = [(0, base)]
            let started = clock.now
            for i in 0..<moves {
                try await move(warmUp + i)
                if (i + 1) % every == 0 || i + 1 == moves { samples.append((i + 1, CredSSPBench.residentBytes())) }
            }
            let elapsed = ServiceBench.seconds(clock.now - started)
            await destination.stop()
            print("moves: \(moves) sequential \(kind) moves of \(kilobytes) KiB after \(warmUp) to warm up, in-process source and destination (\(String(format: "%.1f", Double(moves) / elapsed)) moves/s)")
            print("load average before: \(loadBefore), after: \(ServiceBench.loadAverage())")
            printSamples(samples, base: base)
        }
    }

    /// `--moves N --warm-up W --every K --kind credssp|kerberos --kilobytes S`, with their defaults.
    static func parse(_ arguments: [String]) throws -> (moves: Int, warmUp: Int, every: Int, kind: String, kilobytes: Int) {
        var moves = 600
        var warmUp = 50
        var every = 100
        var kind = "credssp"
        var kilobytes = 256
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            func number() throws -> Int {
                guard let text = iterator.next(), let value = Int(text), value > 0 else {
                    throw BenchError("\(argument) needs a positive whole number")
                }
                return value
            }
            switch argument {
            case "--moves": moves = try number()
            case "--warm-up": warmUp = try number()
            case "--every": every = try number()
            case "--kilobytes": kilobytes = try number()
            case "--kind":
                kind = iterator.next() ?? ""
                guard ["credssp", "kerberos"].contains(kind) else { throw BenchError("--kind is credssp or kerberos") }
            default: throw BenchError("unknown option \(argument)")
            }
        }
        return (moves, warmUp, every, kind, kilobytes)
    }

    /// The resident set at each sample and the slope over the second half.
    static func printSamples(_ samples: [(moves: Int, bytes: Int)], base: Int) {
        print("| moves after warm-up | resident set | growth since warm-up |")
        print("|---|---|---|")
        for s in samples {
            print(String(format: "| %d | %.1f MB | %+.1f MB |", s.moves, Double(s.bytes) / 1e6, Double(s.bytes - base) / 1e6))
        }
        // The slope over the second half (the first moves after warm-up still fill caches and pools).
        let half = samples[samples.count / 2]
        if let last = samples.last, last.moves > half.moves {
            print(String(format: "growth over moves %d–%d: %.2f KB per move", half.moves, last.moves,
                         Double(last.bytes - half.bytes) / 1e3 / Double(last.moves - half.moves)))
        }
    }
}

