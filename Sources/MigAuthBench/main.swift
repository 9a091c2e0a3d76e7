// migauth-bench: the package's benchmarks. Figures go in BENCHMARKS.md.
// Usage: migauth-bench <suite> [options]   suites: gss, sim, service, credssp, qemu, moves
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let suite = arguments.first ?? "help"
let rest = Array(arguments.dropFirst())
do {
    switch suite {
    case "gss": try await GSSBench.run(rest)
    case "sim": try await SimBench.run(rest)
    case "service": try await ServiceBench.run(rest)
    case "credssp": try await CredSSPBench.run(rest)
    case "qemu": try await QEMUBench.run(rest)
    case "moves": try await MovesBench.run(rest)
    default:
        print("usage: migauth-bench <suite> [options]\nsuites: gss (GSS context and wrap/unwrap vs C), sim (migration decisions, LDIF import), service (migration service handshake and protected stream), credssp (CredSSP exchanges vs pyspnego), qemu (live QEMU migration: plain TCP, TLS, through migauth in process, SMB as QEMU multifd (--smb 2,4), and between two migauth daemons), moves (resident set over many sequential moves)")
        exit(suite == "help" || suite == "--help" ? 0 : 2)
    }
} catch {
    FileHandle.standardError.write(Data("migauth-bench: \(error)\n".utf8))
    exit(1)
}
