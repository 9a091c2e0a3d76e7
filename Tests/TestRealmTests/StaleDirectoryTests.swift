import Foundation
import Testing
@testable import TestRealm

/// Realm directories left by a killed process are found by their owner record and removed;
/// nothing else is touched (issue 15: `scenario run --real` killed mid-run left its secrets).
@Suite("Stale realm directories")
struct StaleDirectoryTests {
    static func makeParent() throws -> String {
        let parent = NSTemporaryDirectory() + "stale-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        return parent
    }

    static func directory(_ parent: String, _ name: String, marker: String?) throws -> String {
        let path = parent + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try "secret\n".write(toFile: path + "/alice.password", atomically: true, encoding: .utf8)
        if let marker { try marker.write(toFile: path + "/.testrealm-owner", atomically: true, encoding: .utf8) }
        return path
    }

    @Test("a running realm's directory carries its owner (0600) and is kept; a dead owner's is removed; others are left alone")
    func onlyDeadOwnersDirectoriesGo() async throws {
        let parent = try Self.makeParent()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let fm = FileManager.default
        let boot = RealmDirectoryOwner.currentBootID()
        let me = try #require(RealmDirectoryOwner.current())
        // Our own PID with another start time: a reused PID, so its owner is gone.
        let reused = try Self.directory(parent, "testrealm-x-reused", marker: RealmDirectoryOwner(pid: me.pid, startTime: me.startTime + 1, bootID: boot).text)
        let otherBoot = try Self.directory(parent, "testrealm-x-otherboot", marker: RealmDirectoryOwner(pid: me.pid, startTime: me.startTime, bootID: "another-boot").text)
        let live = try Self.directory(parent, "testrealm-x-live", marker: me.text)
        let noMarker = try Self.directory(parent, "testrealm-x-nomarker", marker: nil)
        let garbled = try Self.directory(parent, "testrealm-x-garbled", marker: "pid=1\n")
        let otherName = try Self.directory(parent, "something-else", marker: RealmDirectoryOwner(pid: me.pid, startTime: 1, bootID: boot).text)
        // A symlink named like a realm, pointing at a dead owner's directory elsewhere: not followed.
        let target = try Self.directory(parent, "target-of-link", marker: RealmDirectoryOwner(pid: me.pid, startTime: 1, bootID: boot).text)
        try fm.createSymbolicLink(atPath: parent + "/testrealm-x-link", withDestinationPath: target)

        try await TestRealm.withRealm(.init(parentDirectory: parent)) { realm in
            let marker = realm.directory + "/.testrealm-owner"
            let attributes = try fm.attributesOfItem(atPath: marker)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect(RealmDirectoryOwner(text: try String(contentsOfFile: marker, encoding: .utf8)) == me)

            let removed = TestRealm.removeStaleDirectories(in: parent)
            #expect(removed.sorted() == [otherBoot, reused].sorted())
            #expect(fm.fileExists(atPath: realm.directory))
            for kept in [live, noMarker, garbled, otherName, target, parent + "/testrealm-x-link"] {
                #expect(fm.fileExists(atPath: kept), "\(kept)")
            }
            // The realm still works after the sweep.
            try await realm.addPrincipal("alice", password: "pw")
            _ = try await realm.kinit("alice", password: "pw")
        }
        #expect(TestRealm.removeStaleDirectories(in: parent).isEmpty)
    }

    @Test("a keepDirectory realm has no owner record, so no later run removes it")
    func keptRealmsAreNotMarked() async throws {
        let parent = try Self.makeParent()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let dir = try await TestRealm.withRealm(.init(parentDirectory: parent, keepDirectory: true)) { $0.directory }
        #expect(!FileManager.default.fileExists(atPath: dir + "/.testrealm-owner"))
        #expect(TestRealm.removeStaleDirectories(in: parent).isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir))
    }
}
