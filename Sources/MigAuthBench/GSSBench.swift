/// GSS benchmarks (context establishment, wrap/unwrap) — owned by the GSS work.
enum GSSBench {
    static func run(_ arguments: [String]) async throws {
        print("gss benchmarks: not yet implemented")
    }
}
