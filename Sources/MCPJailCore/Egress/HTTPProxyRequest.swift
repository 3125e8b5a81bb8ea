/// The first request on a connection to the jail's HTTP proxy (HTTP_PROXY/HTTPS_PROXY):
/// `CONNECT host:port` (a tunnel, for https) or an absolute-form request such as
/// `GET http://host:port/path` (plain http), which is passed on in origin form with
/// `Connection: close`, so one proxy connection carries one request to one destination.
public enum HTTPProxyRequest: Sendable, Equatable {
    case connect(host: String, port: UInt16)
    /// `head` is the request head to send to the destination (blank line included).
    case forward(host: String, port: UInt16, head: [UInt8])

    public var host: String {
        switch self {
        case .connect(let host, _), .forward(let host, _, _): host
        }
    }

    public var port: UInt16 {
        switch self {
        case .connect(_, let port), .forward(_, let port, _): port
        }
    }

    /// The largest request head read before refusing (431).
    public static let maxHeadBytes = 16 * 1024

    /// Where the head ends (after `\r\n\r\n`) in `buffer`, if it is complete.
    public static func headEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 3..<buffer.count where buffer[i] == 10 && buffer[i - 1] == 13 && buffer[i - 2] == 10 && buffer[i - 3] == 13 {
            return i + 1
        }
        return nil
    }

    /// Parses a complete head; nil when it is not a proxy request this proxy serves.
    public static func parse(head: [UInt8]) -> HTTPProxyRequest? {
        guard let text = String(validating: head, as: UTF8.self) else { return nil }
        var lines = text.components(separatedBy: "\r\n")
        guard lines.count >= 2 else { return nil }
        let parts = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return nil }
        let method = String(parts[0])
        let target = String(parts[1])
        if method == "CONNECT" {
            guard let (host, port) = hostPort(target, defaultPort: nil) else { return nil }
            return .connect(host: host, port: port)
        }
        guard method.allSatisfy({ $0.isASCII && $0.isUppercase }), !method.isEmpty,
            target.lowercased().hasPrefix("http://")
        else { return nil }
        let rest = target.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.contains("@"), let (host, port) = hostPort(authority, defaultPort: 80) else { return nil }
        lines.removeFirst()
        var out = "\(method) \(path) \(parts[2])\r\n"
        for line in lines where !line.isEmpty {
            let name = line.prefix { $0 != ":" }.lowercased()
            if ["connection", "proxy-connection", "proxy-authorization", "keep-alive"].contains(name) { continue }
            out += line + "\r\n"
        }
        out += "Connection: close\r\n\r\n"
        return .forward(host: host, port: port, head: Array(out.utf8))
    }

    /// `host:port`, `[v6]:port`, or a host alone when `defaultPort` is given.
    static func hostPort(_ text: String, defaultPort: UInt16?) -> (String, UInt16)? {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = Substring(text)
        }
        guard !host.isEmpty else { return nil }
        guard let port = portText.map({ EgressRule.parsePort($0) }) ?? defaultPort else { return nil }
        return (String(host).lowercased(), port)
    }
}
