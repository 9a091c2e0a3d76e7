import Directory
import Hosts

/// Rule N2: a host runs at most its `-MaximumVirtualMachineMigrations` migrations at once
/// (as source or destination); further moves wait in line and then run — they do not fail.
extension World {
    mutating func runBatch(_ moves: [MoveRequest]) throws(SimulationError) -> [MoveOutcome] {
        var running: [String: Int] = [:]
        var outcomes: [MoveOutcome] = []
        var waiting = 0
        for move in moves {
            let outcome = try evaluate(move)
            guard case .success(let report) = outcome, let s = host(move.source), let d = host(move.destination) else {
                outcomes.append(outcome)
                continue
            }
            let slots = move.kind.movesVM
                ? (running[s.key, default: 0] < s.migration.maximumMigrations && running[d.key, default: 0] < d.migration.maximumMigrations)
                : true
            if slots {
                if move.kind.movesVM {
                    running[s.key, default: 0] += 1
                    running[d.key, default: 0] += 1
                }
                outcomes.append(.success(report))
            } else {
                waiting += 1
                outcomes.append(.queued(report, position: waiting))
            }
            perform(move)
        }
        return outcomes
    }
}
