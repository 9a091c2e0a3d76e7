/// Simulation benchmarks (migration decisions per second, LDIF import) — owned by the scenario work.
enum SimBench {
    static func run(_ arguments: [String]) async throws {
        print("sim benchmarks: not yet implemented")
    }
}
