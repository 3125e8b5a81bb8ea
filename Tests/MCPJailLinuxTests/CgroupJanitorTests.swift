import Foundation
import Glibc
import Testing
@testable import MCPJailCore
@testable import MCPJailLinux

@Suite struct CgroupJanitorTests {
    @Test func onlySessionNamesAreSwept() {
        #expect(CgroupJanitor.isSessionName("bc796785-167a-4dce-900e-98cbe8fbd4d4"))
        #expect(!CgroupJanitor.isSessionName("mcpjail-supervisor"))
        #expect(!CgroupJanitor.isSessionName("cgroup.procs"))
    }

    /// On the real cgroup file system (root, this host's v1 pids hierarchy): an empty stale
    /// session cgroup is removed; one with a process in it, or a young one, stays.
    @Test(.enabled(if: geteuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/cgroup.procs")))
    func removesEmptyStaleSessionCgroupsOnly() throws {
        let parent = "/sys/fs/cgroup/pids/mcpjail"
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let stale = parent + "/" + UUID().uuidString.lowercased()
        let busy = parent + "/" + UUID().uuidString.lowercased()
        #expect(mkdir(stale, 0o755) == 0 && mkdir(busy, 0o755) == 0)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["10"]
        try sleeper.run()
        defer {
            kill(sleeper.processIdentifier, SIGKILL)
            sleeper.waitUntilExit()
            rmdir(busy)
            rmdir(stale)
        }
        try "\(sleeper.processIdentifier)".write(toFile: busy + "/cgroup.procs", atomically: false, encoding: .utf8)
        let plan = CgroupPlan(entries: [.init(controller: .pids, version: .v1, parent: parent, reason: nil)], enforcement: .strict)

        // Young: nothing goes.
        #expect(!CgroupJanitor.sweep(plan).contains(stale))
        #expect(FileManager.default.fileExists(atPath: stale))
        // An hour later: the empty one goes, the busy one stays.
        let removed = CgroupJanitor.sweep(plan, now: Date(timeIntervalSinceNow: 3600))
        #expect(removed.contains(stale) && !removed.contains(busy))
        #expect(!FileManager.default.fileExists(atPath: stale) && FileManager.default.fileExists(atPath: busy))
    }
}
