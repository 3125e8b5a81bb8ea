import TOMLKit

/// A parsed TOML document as plain Swift values, plus the line of every key.
///
/// TOMLKit (toml++) parses and reports syntax errors with positions, but gives no source
/// positions for keys or values. ``TOMLLocator`` recovers them by scanning the source text
/// itself: table headers (`[a.b]`, `[[a]]`), dotted keys, quoted keys, inline tables and
/// multi-line arrays. It only runs on text TOMLKit already accepted, so it can be simple;
/// it is good enough to name the line of an offending key or array element, which is all
/// a profile error needs.
struct TOMLDocument {
    struct SyntaxError: Error {
        var line: Int?
        var message: String
    }

    var root: [(key: String, value: TOMLNode)]
    var locator: TOMLLocator

    /// Parses `source`, or returns the syntax error's line and message.
    static func parse(_ source: String) -> Result<TOMLDocument, SyntaxError> {
        let locator = TOMLLocator(source: source)
        if let problem = locator.structuralProblem {
            // toml++ built without NDEBUG asserts (aborts the process) on some malformed
            // input, e.g. a table header without a key (`[.`) or a missing value (`a = [}`);
            // those never reach it. All of them are invalid TOML anyway.
            return .failure(SyntaxError(line: problem.line, message: "TOML syntax error: \(problem.message)"))
        }
        do {
            let table = try TOMLTable(string: source)
            let root = TOMLNode.entries(of: table)
            return .success(TOMLDocument(root: root, locator: locator))
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            return .failure(SyntaxError(line: line > 0 ? line : nil, message: "TOML syntax error: \(error.description)"))
        } catch {
            return .failure(SyntaxError(line: nil, message: "TOML syntax error: \(error)"))
        }
    }
}

/// A TOML value, copied out of TOMLKit's reference types.
indirect enum TOMLNode {
    case table([(key: String, value: TOMLNode)])
    case array([TOMLNode])
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case dateTime(String)

    init(_ value: TOMLValueConvertible) {
        switch value.type {
        case .table:
            self = value.table.map { .table(TOMLNode.entries(of: $0)) } ?? .table([])
        case .array:
            self = .array(value.array.map { array in array.map { TOMLNode($0) } } ?? [])
        case .string:
            self = .string(value.string ?? "")
        case .int:
            self = .integer(value.int ?? 0)
        case .double:
            self = .float(value.double ?? 0)
        case .bool:
            self = .boolean(value.bool ?? false)
        case .date, .time, .dateTime:
            self = .dateTime(value.debugDescription)
        }
    }

    static func entries(of table: TOMLTable) -> [(key: String, value: TOMLNode)] {
        table.keys.compactMap { key in table[key].map { (key, TOMLNode($0)) } }
    }

    /// For messages: "a string", "an integer", ...
    var typeName: String {
        switch self {
        case .table: "a table"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .dateTime: "a date/time"
        }
    }
}

/// Maps key paths to the 1-based line that defines them, by scanning the TOML source.
struct TOMLLocator {
    private(set) var lines: [KeyPath: Int] = [:]
    /// The first place where a key or value must start and cannot: a table header (`[`,
    /// `[[`) not followed by a key, a quote or `]`, or a value starting with a terminator.
    private(set) var structuralProblem: (line: Int, message: String)?

    init(source: String) {
        var scanner = Scanner(bytes: Array(source.utf8))
        scanner.scanDocument()
        lines = scanner.lines
        structuralProblem = scanner.structuralProblem
    }

    /// The line of `path`, else of its nearest ancestor that has one.
    func line(for path: KeyPath) -> Int? {
        var current: KeyPath? = path
        while let candidate = current {
            if let line = lines[candidate] { return line }
            current = candidate.parent
        }
        return nil
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        var lines: [KeyPath: Int] = [:]
        var arrayTableCounts: [KeyPath: Int] = [:]
        var structuralProblem: (line: Int, message: String)?

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }
        func peek(_ offset: Int) -> UInt8? {
            index + offset < bytes.count ? bytes[index + offset] : nil
        }

        mutating func advance() {
            if bytes[index] == UInt8(ascii: "\n") { line += 1 }
            index += 1
        }

        mutating func record(_ path: KeyPath, line: Int) {
            if lines[path] == nil { lines[path] = line }
        }

        mutating func skipBlanks() {
            while let byte = current, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                advance()
            }
        }

        mutating func skipComment() {
            if current == UInt8(ascii: "#") {
                while let byte = current, byte != UInt8(ascii: "\n") { advance() }
            }
        }

        /// Blanks, newlines and comments.
        mutating func skipTrivia() {
            while let byte = current {
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
                    || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                {
                    advance()
                } else if byte == UInt8(ascii: "#") {
                    skipComment()
                } else {
                    return
                }
            }
        }

        mutating func skipRestOfLine() {
            while let byte = current, byte != UInt8(ascii: "\n") { advance() }
        }

        mutating func scanDocument() {
            var table = KeyPath.root
            while true {
                skipTrivia()
                guard let byte = current else { return }
                let start = index
                let startLine = line
                if byte == UInt8(ascii: "[") {
                    advance()
                    skipBlanks()
                    let isArrayTable = current == UInt8(ascii: "[")
                    if isArrayTable { advance() }
                    skipBlanks()
                    if let next = current, structuralProblem == nil, !isBareKeyByte(next),
                        next != UInt8(ascii: "\""), next != UInt8(ascii: "'"), next != UInt8(ascii: "]")
                    {
                        structuralProblem = (startLine, "expected a key after '['")
                    }
                    let keys = scanKey()
                    var path = KeyPath.root
                    for key in keys.dropLast() {
                        path = path.appending(key)
                        record(path, line: startLine)
                    }
                    if let last = keys.last { path = path.appending(last) }
                    record(path, line: startLine)
                    if isArrayTable {
                        let count = arrayTableCounts[path, default: 0]
                        arrayTableCounts[path] = count + 1
                        path = path.appending(index: count)
                        record(path, line: startLine)
                    }
                    table = path
                    skipRestOfLine()
                } else {
                    let keys = scanKey()
                    var path = table
                    for key in keys {
                        path = path.appending(key)
                        record(path, line: startLine)
                    }
                    skipBlanks()
                    if current == UInt8(ascii: "=") {
                        advance()
                        skipBlanks()
                        scanValue(at: path)
                    }
                    skipBlanks()
                    skipComment()
                }
                if index == start { advance() }  // never loop in place on unexpected text
            }
        }

        /// A dotted key: `a`, `a.b`, `"a b".c`, `'lit'`.
        mutating func scanKey() -> [String] {
            var keys: [String] = []
            while true {
                skipBlanks()
                guard let byte = current else { return keys }
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                    keys.append(scanString())
                } else {
                    let start = index
                    while let byte = current, isBareKeyByte(byte) { advance() }
                    if index == start { return keys }
                    keys.append(String(decoding: bytes[start..<index], as: UTF8.self))
                }
                skipBlanks()
                guard current == UInt8(ascii: ".") else { return keys }
                advance()
            }
        }

        func isBareKeyByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }

        /// Any of the four string forms; returns the decoded text (used for quoted keys).
        mutating func scanString() -> String {
            guard let quote = current else { return "" }
            let literal = quote == UInt8(ascii: "'")
            let multiline = peek(1) == quote && peek(2) == quote
            if multiline { advance(); advance(); advance() } else { advance() }
            var out: [UInt8] = []
            while let byte = current {
                if byte == quote {
                    if !multiline { advance(); break }
                    if peek(1) == quote && peek(2) == quote {
                        // Up to two quotes may directly precede the closing delimiter.
                        var run = 0
                        while current == quote { run += 1; advance() }
                        out += Array(repeating: quote, count: max(0, run - 3))
                        break
                    }
                    out.append(byte)
                    advance()
                } else if byte == UInt8(ascii: "\\") && !literal {
                    advance()
                    guard let escaped = current else { break }
                    advance()
                    switch escaped {
                    case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                    case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                    case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "e"): out.append(0x1B)
                    case UInt8(ascii: "u"), UInt8(ascii: "U"):
                        let width = escaped == UInt8(ascii: "u") ? 4 : 8
                        var hex: [UInt8] = []
                        while hex.count < width, let digit = current { hex.append(digit); advance() }
                        if let value = UInt32(String(decoding: hex, as: UTF8.self), radix: 16),
                            let scalar = Unicode.Scalar(value)
                        {
                            out += Array(String(Character(scalar)).utf8)
                        }
                    case UInt8(ascii: "\n"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                        // Line-ending backslash in a multi-line basic string.
                        while let next = current,
                            next == UInt8(ascii: " ") || next == UInt8(ascii: "\t")
                                || next == UInt8(ascii: "\n") || next == UInt8(ascii: "\r")
                        {
                            advance()
                        }
                    default: out.append(escaped)
                    }
                } else {
                    out.append(byte)
                    advance()
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        mutating func scanValue(at path: KeyPath) {
            guard let byte = current else {
                if structuralProblem == nil { structuralProblem = (line, "expected a value") }
                return
            }
            switch byte {
            case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ","), UInt8(ascii: "#"),
                UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                if structuralProblem == nil { structuralProblem = (line, "expected a value") }
                advance()
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                _ = scanString()
            case UInt8(ascii: "["):
                advance()
                var element = 0
                while true {
                    skipTrivia()
                    guard let next = current else { return }
                    if next == UInt8(ascii: "]") { advance(); return }
                    if next == UInt8(ascii: ",") { advance(); continue }
                    let elementPath = path.appending(index: element)
                    record(elementPath, line: line)
                    let start = index
                    scanValue(at: elementPath)
                    if index == start { advance() }
                    element += 1
                }
            case UInt8(ascii: "{"):
                advance()
                while true {
                    skipTrivia()
                    guard let next = current else { return }
                    if next == UInt8(ascii: "}") { advance(); return }
                    if next == UInt8(ascii: ",") { advance(); continue }
                    let start = index
                    let keyLine = line
                    var keyPath = path
                    for key in scanKey() {
                        keyPath = keyPath.appending(key)
                        record(keyPath, line: keyLine)
                    }
                    skipBlanks()
                    if current == UInt8(ascii: "=") {
                        advance()
                        skipBlanks()
                        scanValue(at: keyPath)
                    }
                    if index == start { advance() }
                }
            default:
                // Numbers, booleans, dates: up to the next delimiter.
                while let next = current,
                    next != UInt8(ascii: ","), next != UInt8(ascii: "]"), next != UInt8(ascii: "}"),
                    next != UInt8(ascii: "\n"), next != UInt8(ascii: "\r"), next != UInt8(ascii: "#")
                {
                    advance()
                }
            }
        }
    }
}
