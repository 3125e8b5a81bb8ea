import Glibc
import MCPJailCore
import Testing
@testable import MCPJailLinux

@Suite("Resource limits (rlimits for the jail's child)")
struct ResourceLimitTests {
    private func entries(_ limits: [ResourceLimit]) -> [String] {
        limits.map { "\(ResourceLimits.name($0.resource)) \($0.soft) \($0.hard)" }
    }

    @Test("the defaults: 1024 files, 1 GiB files, no CPU cap, no core dumps")
    func defaults() {
        #expect(entries(ResourceLimits.rlimits(for: Profile.Limits())) == [
            "RLIMIT_NOFILE 1024 1024",
            "RLIMIT_FSIZE 1073741824 1073741824",
            "RLIMIT_CORE 0 0",
        ])
    }

    @Test("every per-process key; cpu_time rounds up, hard one second past soft")
    func everyKey() {
        let limits = Profile.Limits(
            memoryBytes: 1 << 20, pids: 3, cpuCores: 0.5, openFiles: 64, fileSizeBytes: 4096,
            cpuTime: .milliseconds(2500), wallTime: .seconds(9))
        #expect(entries(ResourceLimits.rlimits(for: limits)) == [
            "RLIMIT_NOFILE 64 64",
            "RLIMIT_FSIZE 4096 4096",
            "RLIMIT_CPU 3 4",
            "RLIMIT_CORE 0 0",
        ])
        #expect(ResourceLimits.cpuSeconds(.seconds(1)) == 1)
        #expect(ResourceLimits.cpuSeconds(.milliseconds(1)) == 1)
    }

    @Test("memory and pids are never rlimits (cgroup jobs); unlimited yields no entry")
    func neverASOrNPROC() {
        let limits = Profile.Limits(memoryBytes: 1 << 20, pids: 1, fileSizeBytes: nil, cpuTime: nil)
        let resources = ResourceLimits.rlimits(for: limits).map(\.resource)
        #expect(!resources.contains(Int32(RLIMIT_AS.rawValue)))
        #expect(!resources.contains(6))  // RLIMIT_NPROC (a macro Swift does not import)
        #expect(!resources.contains(Int32(RLIMIT_DATA.rawValue)))
        #expect(resources == [ResourceLimits.nofile, ResourceLimits.core])
    }

    @Test("the constants are glibc's")
    func constants() {
        #expect(ResourceLimits.nofile == 7)
        #expect(ResourceLimits.fsize == 1)
        #expect(ResourceLimits.cpu == 0)
        #expect(ResourceLimits.core == 4)
        #expect(ResourceLimits.infinity == UInt64.max)
    }

    @Test("a limit above this process's hard limit is lowered to it, with a note")
    func clamped() {
        let limits = Profile.Limits(openFiles: 4096, fileSizeBytes: 1 << 30, cpuTime: .seconds(5))
        let (applied, notes) = ResourceLimits.applicable(for: limits) { resource in
            switch resource {
            case ResourceLimits.nofile: (1024, 2048)
            case ResourceLimits.fsize: (ResourceLimits.infinity, ResourceLimits.infinity)
            default: nil
            }
        }
        #expect(entries(applied) == [
            "RLIMIT_NOFILE 2048 2048", "RLIMIT_FSIZE 1073741824 1073741824", "RLIMIT_CPU 5 6", "RLIMIT_CORE 0 0",
        ])
        #expect(notes == ["RLIMIT_NOFILE lowered from 4096 to 2048: this process's hard limit, which the jail cannot raise"])
    }

    @Test("getrlimit of this process agrees with the default clamp")
    func realCurrent() throws {
        let nofile = try #require(ResourceLimits.current(ResourceLimits.nofile))
        #expect(nofile.soft <= nofile.hard)
        let (applied, _) = ResourceLimits.applicable(for: Profile.Limits())
        for limit in applied {
            let hard = ResourceLimits.current(limit.resource)?.hard ?? ResourceLimits.infinity
            #expect(limit.hard <= hard)
            #expect(limit.soft <= limit.hard)
        }
    }
}
