import FoundationEssentials
import Glibc
import MCPJailCore

/// Removes session cgroups left behind by an `mcpjail run` that could not clean up (it was
/// SIGKILLed). Each `run` sweeps the `mcpjail` parents its plan uses once its own session
/// runs (off the start-up path).
///
/// Only empty ones older than `minimumAge` go: a session that has just made its cgroup but
/// not yet moved its jail in is young, and a cgroup with a process in it cannot be removed
/// (rmdir says EBUSY).
public enum CgroupJanitor {
    public static let minimumAge: TimeInterval = 60

    /// Returns the directories it removed.
    @discardableResult
    public static func sweep(_ plan: CgroupPlan, now: Date = Date(), minimumAge: TimeInterval = minimumAge) -> [String] {
        var removed: [String] = []
        for parent in Set(plan.entries.compactMap(\.parent)) {
            guard let sessions = FD.directoryNames(parent) else { continue }
            for name in sessions where isSessionName(name) {
                let path = parent + "/" + name
                var info = stat()
                guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
                let changed = Date(timeIntervalSince1970: TimeInterval(info.st_ctim.tv_sec))
                guard now.timeIntervalSince(changed) >= minimumAge else { continue }
                guard FileContents.bytes(path + "/cgroup.procs")?.isEmpty == true, rmdir(path) == 0 else { continue }
                removed.append(path)
            }
        }
        return removed
    }

    /// Session cgroups are named by the session's UUID.
    static func isSessionName(_ name: String) -> Bool {
        name.count == 36 && name.allSatisfy { $0.isHexDigit || $0 == "-" }
    }
}
