/// The rule for profile names, which are also file names: `NAME.toml`.
///
/// `[A-Za-z0-9._-]{1,64}`, and neither `.` nor `..`. A name is never a path, so a client
/// cannot reach a file outside the profile directories through it.
public enum ProfileName {
    public static let maxLength = 64

    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maxLength, name != ".", name != ".." else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// The name as it may be shown in a message: control characters replaced by `?`, cut
    /// to a sane length, so a hostile name cannot forge lines on the terminal.
    static func printable(_ name: String) -> String {
        let cleaned = String(String.UnicodeScalarView(name.unicodeScalars.map { scalar in
            scalar.properties.generalCategory == .control ? "?" : scalar
        }))
        return cleaned.count > 80 ? String(cleaned.prefix(80)) + "..." : cleaned
    }
}
