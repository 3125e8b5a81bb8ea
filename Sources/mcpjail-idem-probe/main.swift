// A second process for the idempotency store's tests, and its benchmark. Not installed.
//
//   mcpjail-idem-probe serve DB     reads commands on stdin, one per line, answers one line each:
//       begin KEY FINGERPRINT  ->  execute | replay HEX | in_flight | mismatch | outcome_unknown | error MESSAGE
//       complete KEY HEX       ->  stored | not_stored | error MESSAGE
//       owner                  ->  PID START_TIME
//   mcpjail-idem-probe open DB      waits for a line on stdin, then opens DB: answers opened | error MESSAGE
//   mcpjail-idem-probe bench DIR [N]   p50/p90/p99 of the store's operations, both durability levels
//
// The measurement: swift run -c release mcpjail-idem-probe bench /some/dir/on/the/state/disk
import Glibc
import MCPJailCore
import MCPJailStore

/// One line to `fd`, unbuffered (the test reads answers as they come).
func say(_ line: String, to fd: Int32 = STDOUT_FILENO) {
    let bytes = Array((line + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
        if n <= 0 { return }
        done += n
    }
}

func fail(_ message: String) -> Never {
    say("mcpjail-idem-probe: \(message)", to: STDERR_FILENO)
    exit(2)
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

func unhex(_ text: Substring) -> [UInt8] {
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex, let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) {
        out.append(UInt8(text[index..<next], radix: 16) ?? 0)
        index = next
    }
    return out
}

func serve(database: String) {
    do {
        let store = try SQLiteIdempotencyStore(path: database)
        let owner = try ProcessOwner.current()
        while let line = readLine() {
            let words = line.split(separator: " ")
            guard let command = words.first else { continue }
            do {
                switch command {
                case "begin" where words.count == 3:
                    let call = IdempotentCall(
                        key: String(words[1]), fingerprint: String(words[2]), suppliedKey: nil, subject: "probe",
                        server: "probe", tool: "write")
                    switch try store.begin(call, owner: owner) {
                    case .execute: say("execute")
                    case .replay(let bytes): say("replay \(hex(bytes))")
                    case .inFlight: say("in_flight")
                    case .mismatch: say("mismatch")
                    case .outcomeUnknown: say("outcome_unknown")
                    }
                case "complete" where words.count == 3:
                    let stored = try store.complete(
                        key: String(words[1]), owner: owner, result: unhex(words[2]), now: IdempotencyDefaults.now())
                    say(stored ? "stored" : "not_stored")
                case "owner":
                    say("\(owner.pid) \(owner.startTime)")
                default:
                    say("error unknown command")
                }
            } catch {
                say("error \(error.message)")
            }
        }
    } catch {
        fail(error.description)
    }
}

/// Opens the store once told to, so that a test can release several processes at once.
func openWhenTold(database: String) {
    guard readLine() != nil else { fail("stdin closed before the go") }
    do {
        _ = try SQLiteIdempotencyStore(path: database)
        say("opened")
    } catch {
        say("error \(error.message)")
    }
}

/// Nanoseconds on the monotonic clock.
func nanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func percentiles(_ samples: [UInt64]) -> String {
    let sorted = samples.sorted()
    func at(_ p: Double) -> String {
        let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        return String(Double(value / 100) / 10) + " µs"
    }
    return "p50 \(at(0.5))  p90 \(at(0.9))  p99 \(at(0.99))  (n=\(sorted.count))"
}

func bench(directory: String, count: Int) {
    let result = Array(#"{"content":[{"type":"text","text":"created issue #42"}],"isError":false}"#.utf8)
    do {
        let owner = try ProcessOwner.current()
        for (name, durability) in [
            ("powerLoss (synchronous=FULL)", SQLiteIdempotencyStore.Durability.powerLoss),
            ("processCrash (synchronous=NORMAL)", .processCrash),
        ] {
            let path = directory + "/idem-bench-\(getpid())-\(name.prefix(5)).sqlite"
            defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
            let store = try SQLiteIdempotencyStore(path: path, durability: durability)
            func call(_ i: Int) -> IdempotentCall {
                IdempotencyKeys.call(
                    subject: "local", server: "github", tool: "create_issue",
                    argumentsDigest: SHA256Hex.digest(Array("{\"title\":\"\(i)\"}".utf8)), suppliedKey: nil)
            }
            let calls = (0..<count).map(call)
            var write: [UInt64] = []
            var beginOnly: [UInt64] = []
            for c in calls {
                let start = nanoseconds()
                guard try store.begin(c, owner: owner, ttl: IdempotencyDefaults.ttl, now: IdempotencyDefaults.now())
                    == .execute
                else { fail("a fresh key did not execute") }
                let begun = nanoseconds()
                try store.complete(key: c.key, owner: owner, result: result, now: IdempotencyDefaults.now())
                let end = nanoseconds()
                write.append(end - start)
                beginOnly.append(begun - start)
            }
            var replay: [UInt64] = []
            var peek: [UInt64] = []
            for c in calls {
                let start = nanoseconds()
                guard case .replay = try store.begin(c, owner: owner, ttl: IdempotencyDefaults.ttl, now: IdempotencyDefaults.now())
                else { fail("a completed key did not replay") }
                let middle = nanoseconds()
                _ = try store.peek(key: c.key, fingerprint: c.fingerprint, now: IdempotencyDefaults.now())
                let end = nanoseconds()
                replay.append(middle - start)
                peek.append(end - middle)
            }
            print("\(name), \(count) keys, in \(directory):")
            print("  begin+complete (fresh key)  \(percentiles(write))")
            print("  begin alone (fresh key)     \(percentiles(beginOnly))")
            print("  begin → replay              \(percentiles(replay))")
            print("  peek                        \(percentiles(peek))")
        }
    } catch {
        fail(error.description)
    }
}

let arguments = CommandLine.arguments
switch arguments.count >= 3 ? arguments[1] : "" {
case "serve": serve(database: arguments[2])
case "open": openWhenTold(database: arguments[2])
case "bench": bench(directory: arguments[2], count: arguments.count > 3 ? Int(arguments[3]) ?? 2000 : 2000)
default: fail("usage: mcpjail-idem-probe serve DB | open DB | bench DIR [N]")
}
