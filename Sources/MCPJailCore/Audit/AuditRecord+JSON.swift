/// The audit log's line format, shared by ``AuditLog`` (writing), ``AuditVerifier`` and
/// ``AuditReader``.
///
/// One record per line:
/// ```
/// {"hash":"<64 hex>","prev":"<64 hex>","time":"2026-11-22T00:38:46.123456Z","server":"time",...}\n
/// ```
/// `hash` is the SHA-256 (lowercase hex) of the bytes after the `{"hash":"<64 hex>",` prefix up to
/// and excluding the newline, that is of `"prev":...}`; `prev` is the previous record's `hash`
/// (64 zeros for the first). Members after `prev`, in this order, nil ones omitted: `time`
/// (UTC, microseconds), `server`, `profile_digest`, `session`, `request_id` (the JSON-RPC id's
/// JSON text, as a string), `method`, `tool`, `arguments_digest`, `decision`, `decided_by`,
/// `outcome`, `error_code`, `error_type`, `latency_us`, `bytes_in`, `bytes_out`, `auth`,
/// `subject`, `act`, `arguments`, `pinned` (whether the server was verified against its lock).
public enum AuditLine {
    /// `prev` of the first record.
    public static let genesisHash = String(repeating: "0", count: 64)

    static let hashPrefix: [UInt8] = Array(#"{"hash":""#.utf8)  // 9 bytes, then 64 hex, then `",`
    static let prevPrefix: [UInt8] = Array(#""prev":""#.utf8)   // 8 bytes, then 64 hex, then `",`
    /// Offset of the hashed body (`"prev":...`) in a line.
    static let bodyOffset = hashPrefix.count + 64 + 2

    /// The complete line for `record` chained after `prev`, newline included, and its hash.
    public static func encode(_ record: AuditRecord, prev: String) -> (line: [UInt8], hash: String) {
        let body = self.body(prev: prev, rest: record.jsonMembersAfterPrev())
        let hash = SHA256Hex.digest(body)
        var line: [UInt8] = []
        line.reserveCapacity(body.count + bodyOffset + 1)
        line.append(contentsOf: hashPrefix)
        line.append(contentsOf: hash.utf8)
        line.append(contentsOf: #"","#.utf8)
        line.append(contentsOf: body)
        line.append(UInt8(ascii: "\n"))
        return (line, hash)
    }

    /// `"prev":"<prev>",` + `rest`, where `rest` is `"time":...}` (closing brace included).
    static func body(prev: String, rest: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(rest.count + 80)
        body.append(contentsOf: prevPrefix)
        body.append(contentsOf: prev.utf8)
        body.append(contentsOf: #"","#.utf8)
        body.append(contentsOf: rest)
        return body
    }

    /// What the fixed-position fields of a line say, without trusting them.
    struct Framing {
        /// The `hash` the line claims.
        var claimedHash: String
        /// The `prev` the line claims.
        var prev: String
        /// Whether SHA-256 of the body equals `claimedHash`.
        var hashMatches: Bool
    }

    /// Reads the `hash` and `prev` at their fixed positions and checks the hash; nil when the
    /// line does not have the framing of a record (the JSON is not parsed here).
    static func framing(_ line: UnsafeRawBufferPointer) -> Framing? {
        guard line.count > bodyOffset + prevPrefix.count + 66,
            line.starts(with: hashPrefix),
            line[hashPrefix.count + 64] == UInt8(ascii: "\""), line[hashPrefix.count + 65] == UInt8(ascii: ","),
            isLowerHex(line, hashPrefix.count, 64)
        else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: line[bodyOffset...])
        guard body.starts(with: prevPrefix), isLowerHex(body, prevPrefix.count, 64),
            body[prevPrefix.count + 64] == UInt8(ascii: "\""), body[prevPrefix.count + 65] == UInt8(ascii: ","),
            body.last == UInt8(ascii: "}")
        else { return nil }
        let claimed = String(decoding: line[hashPrefix.count..<(hashPrefix.count + 64)], as: UTF8.self)
        let prev = String(decoding: body[prevPrefix.count..<(prevPrefix.count + 64)], as: UTF8.self)
        return Framing(claimedHash: claimed, prev: prev, hashMatches: SHA256Hex.digest(body) == claimed)
    }

    /// The hash the line claims, if it has a record's framing at all (for torn-line triage).
    static func claimedHash(_ line: UnsafeRawBufferPointer) -> String? {
        guard line.count >= hashPrefix.count + 66, line.starts(with: hashPrefix),
            isLowerHex(line, hashPrefix.count, 64)
        else { return nil }
        return String(decoding: line[hashPrefix.count..<(hashPrefix.count + 64)], as: UTF8.self)
    }

    /// Whether `line` could be the beginning of a record cut short: it begins like one.
    static func looksLikeRecordPrefix(_ line: UnsafeRawBufferPointer) -> Bool {
        if line.count <= hashPrefix.count { return hashPrefix.starts(with: line) }
        return line.starts(with: hashPrefix)
    }

    private static func isLowerHex(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> Bool {
        for i in start..<(start + count) {
            switch bytes[i] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): continue
            default: return false
            }
        }
        return true
    }
}

extension AuditRecord {
    /// The record's members after `prev`, closing brace included: `"time":...}`.
    func jsonMembersAfterPrev() -> [UInt8] {
        var w = JSONObjectWriter()
        w.field("time", AuditTime.format(time))
        w.field("server", server)
        w.field("profile_digest", profileDigest)
        w.field("session", session)
        w.optionalField("request_id", requestID)
        w.field("method", method)
        w.optionalField("tool", tool)
        w.optionalField("arguments_digest", argumentsDigest)
        w.field("decision", decision.rawValue)
        w.optionalField("decided_by", decidedBy)
        w.field("outcome", outcome.rawValue)
        w.optionalField("error_code", errorCode)
        w.optionalField("error_type", errorType)
        w.field("latency_us", latencyMicros)
        w.field("bytes_in", bytesIn)
        w.field("bytes_out", bytesOut)
        w.optionalField("auth", auth)
        w.optionalField("subject", subject)
        if let actors { w.field("act", .array(actors.map { .string($0) })) }
        if let arguments { w.field("arguments", arguments) }
        w.optionalField("idempotency_key", idempotencyKey)
        w.optionalField("idempotency", idempotency)
        if let pinned { w.field("pinned", pinned) }
        w.optionalField("destination", destination)
        w.optionalField("address", peerAddress)
        w.optionalField("protocol", transport)
        w.optionalField("attempts", attempts)
        return Array(w.finish().dropFirst())
    }

    /// The record as one JSON object (`hash` and `prev` not included), members in log order.
    public var jsonObject: [UInt8] { [UInt8(ascii: "{")] + jsonMembersAfterPrev() }

    /// Reads a record from a parsed audit line (or any object with the same member names).
    /// Unknown members are ignored, so newer logs stay readable.
    public init(json: JSONValue) throws(MCPJailError) {
        guard case .object(let o) = json else { throw Self.bad("not a JSON object") }
        func string(_ key: String) throws(MCPJailError) -> String {
            guard let v = o[key]?.stringValue else { throw Self.bad("missing or non-string \"\(key)\"") }
            return v
        }
        func optionalString(_ key: String) throws(MCPJailError) -> String? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw Self.bad("non-string \"\(key)\"") }
            return s
        }
        func integer(_ key: String) throws(MCPJailError) -> Int64 {
            guard let v = o[key]?.numberValue?.int64Value else { throw Self.bad("missing or non-integer \"\(key)\"") }
            return v
        }
        func optionalInteger(_ key: String) throws(MCPJailError) -> Int64? {
            guard let v = o[key], !v.isNull else { return nil }
            guard let n = v.numberValue?.int64Value else { throw Self.bad("non-integer \"\(key)\"") }
            return n
        }
        let timeText = try string("time")
        guard let time = AuditTime.parse(timeText) else { throw Self.bad("bad \"time\" \(timeText)") }
        let decisionText = try string("decision")
        guard let decision = Decision(rawValue: decisionText) else { throw Self.bad("unknown decision \(decisionText)") }
        let outcomeText = try string("outcome")
        guard let outcome = Outcome(rawValue: outcomeText) else { throw Self.bad("unknown outcome \(outcomeText)") }
        let errorCode = try optionalInteger("error_code")
        self.init(
            time: time, server: try string("server"), profileDigest: try string("profile_digest"),
            session: try string("session"), requestID: try optionalString("request_id"),
            method: try string("method"), tool: try optionalString("tool"),
            argumentsDigest: try optionalString("arguments_digest"), decision: decision,
            decidedBy: try optionalString("decided_by"), outcome: outcome,
            errorCode: errorCode.flatMap { Int(exactly: $0) }, errorType: try optionalString("error_type"),
            latencyMicros: try integer("latency_us"), bytesIn: Int(try integer("bytes_in")),
            bytesOut: Int(try integer("bytes_out")), auth: try optionalString("auth"),
            subject: try optionalString("subject"),
            actors: o["act"]?.arrayValue?.compactMap(\.stringValue), arguments: o["arguments"],
            idempotencyKey: try optionalString("idempotency_key"), idempotency: try optionalString("idempotency"),
            pinned: o["pinned"]?.boolValue)
        destination = try optionalString("destination")
        peerAddress = try optionalString("address")
        transport = try optionalString("protocol")
        attempts = try optionalInteger("attempts").flatMap { Int(exactly: $0) }
    }

    private static func bad(_ why: String) -> MCPJailError {
        MCPJailError(.auditLog, "unreadable audit record: \(why)")
    }
}

/// The audit log's timestamps: RFC 3339 UTC with microseconds, `2026-11-22T00:38:46.123456Z`.
public enum AuditTime {
    /// Formats seconds since the epoch, rounded to the microsecond.
    public static func format(_ seconds: Double) -> String {
        let micros = seconds.isFinite ? Int64((seconds * 1_000_000).rounded()) : 0
        return format(micros: micros)
    }

    public static func format(micros: Int64, fractionDigits: Int = 6) -> String {
        let (secondsTotal, micro) = floorDivide(micros, 1_000_000)
        let (days, secondOfDay) = floorDivide(secondsTotal, 86_400)
        let (year, month, day) = civil(fromDays: days)
        let digits = min(max(fractionDigits, 0), 6)
        // Written digit by digit into one buffer: this runs for every audit record.
        let length = 20 + (digits > 0 ? digits + 1 : 0) + (year > 9999 ? String(year).count - 4 : 0)
        return String(unsafeUninitializedCapacity: length) { out in
            var at = 0
            func put(_ value: Int64, _ width: Int) {
                var text = value
                var buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                var count = 0
                withUnsafeMutableBytes(of: &buffer) { scratch in
                    repeat {
                        scratch[count] = UInt8(0x30 + text % 10)
                        text /= 10
                        count += 1
                    } while text > 0 && count < 10
                    for _ in count..<max(width, count) { out[at] = 0x30; at += 1 }
                    for i in stride(from: count - 1, through: 0, by: -1) { out[at] = scratch[i]; at += 1 }
                }
            }
            func char(_ c: Character) {
                out[at] = c.asciiValue!
                at += 1
            }
            put(max(0, year), 4); char("-"); put(month, 2); char("-"); put(day, 2); char("T")
            put(secondOfDay / 3600, 2); char(":"); put(secondOfDay / 60 % 60, 2); char(":"); put(secondOfDay % 60, 2)
            if digits > 0 {
                var divisor: Int64 = 1
                for _ in 0..<(6 - digits) { divisor *= 10 }
                char(".")
                put(micro / divisor, digits)
            }
            char("Z")
            return at
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC only, up to 9 fraction digits) into
    /// seconds since the epoch.
    public static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.last == UInt8(ascii: "Z") else { return nil }
        func num(_ start: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in start..<(start + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
            let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2),
            let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var micros: Int64 = 0
        if b.count > 20 {
            let digits = b.count - 21
            guard b[19] == UInt8(ascii: "."), (1...9).contains(digits), let f = num(20, digits) else { return nil }
            var scaled = f
            if digits > 6 {
                for _ in 0..<(digits - 6) { scaled /= 10 }
            } else {
                for _ in 0..<(6 - digits) { scaled *= 10 }
            }
            micros = scaled
        }
        let days = self.days(fromCivil: y, mo, d)
        let total = ((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000) + micros
        return Double(total) / 1_000_000
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b
        let r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
