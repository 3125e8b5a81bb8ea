import Glibc

/// The result of checking an audit log's hash chain.
public struct AuditVerification: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The line's content does not hash to its `hash`: the record was edited.
        case hashMismatch = "hash mismatch (record edited)"
        /// The record's `prev` is not the hash of the record before it: a record was
        /// removed, inserted or moved.
        case prevMismatch = "prev mismatch (record removed or reordered)"
        /// A line that is neither a record nor the remains of an interrupted write.
        case unparseable = "unparseable line"
        /// The beginning of a record whose write was interrupted (a crash): the last line
        /// without its newline, or such a fragment that later records were chained around.
        case tornLine = "torn line (write interrupted)"
    }

    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// 1-based line number.
        public var line: Int
        public var kind: Kind
        public init(line: Int, kind: Kind) {
            self.line = line
            self.kind = kind
        }
        public var description: String { "line \(line): \(kind.rawValue)" }
    }

    public var path: String
    /// Whether the file exists (a missing log verifies as empty).
    public var exists: Bool
    /// Record lines checked (edited ones included; torn and unparseable lines not).
    public var records: Int
    /// The first break of the chain: evidence of tampering (or of a writer that is not
    /// ``AuditLog``). Nil when the chain is intact.
    public var firstBreak: Problem?
    /// Lines left by interrupted writes. They lose the record being written but do not break
    /// the chain: the records around them chain to each other.
    public var tornLines: [Int]
    /// The hash of the last record, the one the next record will chain to.
    public var lastHash: String

    /// True when every record chains to the one before it (torn lines aside).
    public var chainIntact: Bool { firstBreak == nil }

    /// The first problem of any kind, torn lines included.
    public var firstProblem: Problem? {
        let torn = tornLines.first.map { Problem(line: $0, kind: .tornLine) }
        switch (firstBreak, torn) {
        case (let b?, let t?): return t.line < b.line ? t : b
        case (let b, let t): return b ?? t
        }
    }
}

/// Checks the hash chain of an audit log (format: ``AuditLine``).
///
/// Every line must be a record whose SHA-256 matches its `hash` (else: edited) and whose
/// `prev` is the `hash` of the record before it, or 64 zeros for the first (else: a record was
/// removed, inserted or reordered). A line cut short by a crash is reported as torn, not as a
/// break, when nothing was chained to it: as the last line without a newline, or as a fragment
/// that the next record chains around.
///
/// What the file alone cannot show: removing the *last* records (truncating the log at a line
/// boundary) leaves a shorter chain that is still intact, and a torn-looking last line may
/// equally be a last record cut short on purpose. Detecting that needs the last hash kept
/// somewhere else (for example, shipped off the machine); ``AuditVerification/lastHash`` is
/// the value to keep. Nor can a chain without a secret stop someone who rewrites the whole
/// file from the edit onward, recomputing every hash.
public enum AuditVerifier {
    /// Verifies the log at `path`. A missing file is an empty, intact log.
    public static func verify(path: String) throws(MCPJailError) -> AuditVerification {
        var checker = Checker(path: path)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return checker.finish(exists: false) }
            throw AuditFile.readError(path)
        }
        defer { _ = Glibc.close(fd) }
        _ = try AuditFile.forEachLine(fd: fd, from: 0, path: path) { line, terminated in
            checker.check(line, terminated: terminated)
            return true
        }
        return checker.finish(exists: true)
    }

    /// Verifies log content held in memory.
    public static func verify(contents: [UInt8], path: String = "<memory>") -> AuditVerification {
        var checker = Checker(path: path)
        contents.withUnsafeBytes { buffer in
            var start = 0
            while start < buffer.count {
                if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    checker.check(UnsafeRawBufferPointer(rebasing: buffer[start..<newline]), terminated: true)
                    start = newline + 1
                } else {
                    checker.check(UnsafeRawBufferPointer(rebasing: buffer[start...]), terminated: false)
                    break
                }
            }
        }
        return checker.finish(exists: true)
    }

    private struct Checker {
        var result: AuditVerification
        var line = 0
        /// A fragment waiting for the next record to tell whether it was torn (the next record
        /// chains around it) or an edited record (the next record chains to its claimed hash).
        var suspect: (line: Int, claimedHash: String?)?

        init(path: String) {
            result = AuditVerification(
                path: path, exists: true, records: 0, firstBreak: nil, tornLines: [], lastHash: AuditLine.genesisHash)
        }

        mutating func breakAt(_ line: Int, _ kind: AuditVerification.Kind) {
            if result.firstBreak == nil { result.firstBreak = .init(line: line, kind: kind) }
        }

        mutating func check(_ bytes: UnsafeRawBufferPointer, terminated: Bool) {
            line += 1
            let isJSON = (try? JSONParser.parse(bytes)) != nil
            if isJSON, let framing = AuditLine.framing(bytes) {
                resolveSuspect(nextPrev: framing.prev)
                result.records += 1
                if !framing.hashMatches {
                    breakAt(line, .hashMismatch)
                } else if framing.prev != result.lastHash {
                    breakAt(line, .prevMismatch)
                }
                // Carry on from what this line claims, so one edit is reported once.
                result.lastHash = framing.claimedHash
                return
            }
            if !isJSON && AuditLine.looksLikeRecordPrefix(bytes) {
                if !terminated {
                    resolveSuspect(nextPrev: nil)
                    result.tornLines.append(line)
                } else {
                    resolveSuspect(nextPrev: nil)
                    suspect = (line, AuditLine.claimedHash(bytes))
                }
                return
            }
            resolveSuspect(nextPrev: nil)
            breakAt(line, .unparseable)
        }

        /// Decides what the pending fragment was, given the `prev` of the record after it
        /// (nil: no record follows directly).
        mutating func resolveSuspect(nextPrev: String?) {
            guard let s = suspect else { return }
            suspect = nil
            if let nextPrev, let claimed = s.claimedHash, nextPrev == claimed, nextPrev != result.lastHash {
                // The next record chains to this line: it was a complete record, since damaged.
                breakAt(s.line, .hashMismatch)
                result.records += 1
                result.lastHash = claimed
            } else {
                result.tornLines.append(s.line)
            }
        }

        mutating func finish(exists: Bool) -> AuditVerification {
            resolveSuspect(nextPrev: nil)
            result.exists = exists
            return result
        }
    }
}
