import Foundation

/// The package root and the built `migauth` (SwiftPM puts it beside the test bundle).
enum RealTestPaths {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ name: String) -> String { root.appendingPathComponent("Fixtures/scenarios/\(name)").path }

    static var migauth: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("migauth").path
    }
}
