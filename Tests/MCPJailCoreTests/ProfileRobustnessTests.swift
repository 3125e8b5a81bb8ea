import Foundation
import Testing
@testable import MCPJailCore

/// Bad input of any kind gets an error, never a crash: mutated profiles through the parser
/// and the line locator.
@Suite("Profile robustness")
struct ProfileRobustnessTests {
    /// A small deterministic generator (SplitMix64), so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("thousands of byte mutations of the reference profile never crash")
    func mutations() throws {
        let reference = try Data(
            contentsOf: URL(fileURLWithPath: ProfileShippedTests.profilesDirectory + "/REFERENCE.toml"))
        let interesting = Array("[]{}\"'=.,#\n\\ ${}/..0".utf8)
        var random = SplitMix(state: 42)
        var accepted = 0
        for _ in 0..<2000 {
            var bytes = [UInt8](reference)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = interesting.randomElement(using: &random)!
                case 1: bytes.remove(at: position)
                default: bytes.insert(interesting.randomElement(using: &random)!, at: position)
                }
            }
            do {
                _ = try ProfileParser.parse(
                    data: Data(bytes), path: "fuzz.toml", name: "fuzz", profileDirectory: "/p", checkCommand: false)
                accepted += 1
            } catch {
                #expect(!error.problems.isEmpty)
                #expect(error.problems.allSatisfy { $0.line == nil || $0.line! >= 1 })
            }
            // The locator alone, on text TOMLKit may have refused.
            _ = TOMLLocator(source: String(decoding: bytes, as: UTF8.self))
        }
        #expect(accepted < 2000)
    }

    /// Inputs on which toml++ (TOMLKit's parser, built with assertions) aborts the process;
    /// the locator's pre-scan turns them into syntax errors first.
    @Test("inputs that abort toml++ are syntax errors", arguments: [
        "y=[]\n[.", "[\n", "[[ .", "s=[}", "a = [1,}", "x = { a = }", "a =",
    ])
    func tomlppAssertions(text: String) {
        do {
            _ = try ProfileParser.parse(
                data: Data(text.utf8), path: "x.toml", name: "x", profileDirectory: "/p", checkCommand: false)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.message.hasPrefix("TOML syntax error") == true)
        }
    }

    @Test("truncations of the reference profile never crash")
    func truncations() throws {
        let reference = try Data(
            contentsOf: URL(fileURLWithPath: ProfileShippedTests.profilesDirectory + "/REFERENCE.toml"))
        for length in stride(from: 0, to: reference.count, by: 7) {
            let prefix = reference.prefix(length)
            _ = try? ProfileParser.parse(
                data: prefix, path: "t.toml", name: "t", profileDirectory: "/p", checkCommand: false)
            _ = TOMLLocator(source: String(decoding: prefix, as: UTF8.self))
        }
    }
}
