import Glibc
import Testing
@testable import MCPJailLinux

/// Feeds `input` through a pipe in `chunks`, and records what the reader does with it.
private func run(
    _ input: [UInt8], chunk: Int = 1 << 16, maxLine: Int = 1 << 20,
    decide: (String) -> LineReader.Disposition = { _ in .forward }
) throws -> (lines: [String], oversize: [Int], forwarded: [UInt8], flushes: Int, prefixes: [[UInt8]]) {
    let (readFD, writeFD) = try FD.pipe()
    defer { FD.close(readFD) }
    // A writer thread, so inputs larger than the pipe buffer do not block the test.
    let writer = Thread { [input] in
        var offset = 0
        while offset < input.count {
            let end = min(offset + chunk, input.count)
            try? input[offset..<end].withUnsafeBytes { try FD.writeAll(writeFD, $0) }
            offset = end
        }
        FD.close(writeFD)
    }
    writer.start()
    let reader = LineReader(fd: readFD, maxLine: maxLine)
    var lines: [String] = []
    var oversize: [Int] = []
    var forwarded: [UInt8] = []
    var flushes = 0
    var prefixes: [[UInt8]] = []
    while try reader.readAndProcess(
        onLine: { line in
            let text = String(decoding: line, as: UTF8.self)
            lines.append(text)
            return decide(text)
        },
        onOversize: { size, prefix in
            oversize.append(size)
            prefixes.append(Array(prefix))
        },
        flush: { bytes in
            forwarded.append(contentsOf: bytes)
            flushes += 1
        })
    {}
    return (lines, oversize, forwarded, flushes, prefixes)
}

import Foundation

@Suite struct LineReaderTests {
    @Test func splitsLinesAcrossChunks() throws {
        let input = Array("one\ntwo\nthree\n".utf8)
        let result = try run(input, chunk: 3)
        #expect(result.lines == ["one", "two", "three"])
        #expect(result.forwarded == input)
    }

    @Test func forwardsRunsWithoutTheConsumedLines() throws {
        let input = Array("a\nb\nDROP\nc\n".utf8)
        let result = try run(input) { $0 == "DROP" ? .consume : .forward }
        #expect(String(decoding: result.forwarded, as: UTF8.self) == "a\nb\nc\n")
    }

    @Test func coalescesABurstIntoOneWrite() throws {
        let input = Array(String(repeating: "{\"x\":1}\n", count: 100).utf8)
        let result = try run(input, chunk: input.count)
        #expect(result.lines.count == 100)
        #expect(result.flushes == 1)
    }

    @Test func terminatesAFinalUnterminatedLine() throws {
        let result = try run(Array("a\nlast".utf8))
        #expect(result.lines == ["a", "last"])
        #expect(String(decoding: result.forwarded, as: UTF8.self) == "a\nlast\n")
    }

    @Test func dropsOversizeLinesAndCarriesOn() throws {
        let big = String(repeating: "x", count: 3000)
        let input = Array("ok1\n\(big)\nok2\n".utf8)
        let result = try run(input, chunk: 100, maxLine: 1000)
        #expect(result.lines == ["ok1", "ok2"])
        #expect(result.oversize == [3000])
        #expect(String(decoding: result.forwarded, as: UTF8.self) == "ok1\nok2\n")
        // The start of the dropped line is kept, so its id can still be answered.
        #expect(result.prefixes.count == 1 && result.prefixes[0].count >= 1000 && result.prefixes[0].allSatisfy { $0 == UInt8(ascii: "x") })
    }

    @Test func refusesAnOversizeLineThatArrivesInOneRead() throws {
        let big = String(repeating: "x", count: 3000)
        let result = try run(Array("ok1\n\(big)\nok2\n".utf8), chunk: 1 << 16, maxLine: 1000)
        #expect(result.lines == ["ok1", "ok2"])
        #expect(result.oversize == [3000])
    }

    @Test func passesLinesUpToTheLimitWhole() throws {
        let line = String(repeating: "y", count: 5 << 20)
        let result = try run(Array((line + "\nz\n").utf8), maxLine: 6 << 20)
        #expect(result.lines.count == 2)
        #expect(result.lines[0].utf8.count == 5 << 20)
        #expect(result.oversize.isEmpty)
    }
}
