import Testing
@testable import MCPJailCore

/// The scanner's and the parser's fast skip over plain string content must stop exactly
/// where the byte-by-byte definition says, whichever of its 64-, 16-, 8- and 1-byte steps
/// sees the stop (and in whichever 16-byte lane of a 64-byte step).
@Suite struct PlainASCIITests {
    @Test func stopsAtTheFirstByteThatNeedsAttentionWhereverItIs() {
        for value in 0...255 {
            let byte = UInt8(value)
            let plain = byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
            for length in [1, 7, 8, 9, 15, 16, 17, 31, 40, 63, 64, 65, 79, 127, 128, 131, 200] {
                for position in 0..<length {
                    var buffer = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    buffer[position] = byte
                    let stop = buffer.withUnsafeBytes { PlainASCII.skip($0.baseAddress!, from: 0, count: length) }
                    #expect(stop == (plain ? length : position), "byte \(value) at \(position) of \(length)")
                }
            }
        }
    }

    @Test func startsWhereItIsTold() {
        let buffer = Array("\"abcdefghijklmnopqrstuvwxyz0123456789\"".utf8)
        let stop = buffer.withUnsafeBytes { PlainASCII.skip($0.baseAddress!, from: 1, count: buffer.count) }
        #expect(stop == buffer.count - 1)
    }
}
