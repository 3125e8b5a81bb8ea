import Synchronization

/// Token buckets keyed by (rule, subject): `[tools.NAME] rate` and `[auth] rate`. Each
/// bucket holds `count` tokens and refills at `count` per `period`; a call takes one. A
/// refused call learns how long until a token is back.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    /// Past this many buckets, refilled ones are dropped to bound memory.
    private static let maxBuckets = 10_000

    public init() {}

    /// Takes one token from bucket `key` governed by `rate` at monotonic time `now`
    /// (nanoseconds). nil when allowed, else the seconds to wait.
    public func take(_ key: String, rate: Profile.Rate, now: UInt64) -> Double? {
        let capacity = Double(rate.count)
        let refillPerNano = capacity / (rate.period.secondsValue * 1e9)
        return buckets.withLock { table -> Double? in
            var bucket = table[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now >= bucket.updated ? Double(now - bucket.updated) : 0
            bucket.tokens = min(capacity, bucket.tokens + elapsed * refillPerNano)
            bucket.updated = now
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                if table.count >= Self.maxBuckets, table[key] == nil { Self.dropRefilled(&table, now: now) }
                table[key] = bucket
                return nil
            }
            table[key] = bucket
            return (1 - bucket.tokens) / refillPerNano / 1e9
        }
    }

    /// Drops buckets idle for longer than the longest period (a day): they are full, the
    /// same as absent.
    private static func dropRefilled(_ table: inout [String: Bucket], now: UInt64) {
        let day: UInt64 = 86_400 * 1_000_000_000
        table = table.filter { _, bucket in now &- bucket.updated < day }
    }
}
