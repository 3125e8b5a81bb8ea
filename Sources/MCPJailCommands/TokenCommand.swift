import ArgumentParser
import FoundationEssentials
import Glibc
import MCPJailCore

/// `mcpjail token`: keys and bearer tokens for per-call authentication.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make signing keys and mint bearer tokens for per-call authentication.",
        discussion: """
            The relay accepts a call when its token, a compact JWT, is signed by one of the \
            profile's keys and names the expected issuer and audience. `keygen` makes a key; \
            `issue` signs a token with it.

            Examples:
              mcpjail token keygen --alg EdDSA --out ci          # ci.key (private), ci.pub
              mcpjail token issue --key ci.key --sub alice --scope "tools:read" --ttl 1h
            """,
        subcommands: [Issue.self, Keygen.self]
    )
}

extension Token {
    /// `mcpjail token issue`: prints a signed token.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "issue",
            abstract: "Mint a signed token (a compact JWT) and print it on stdout.",
            discussion: """
                The key file decides the algorithm: an Ed25519 private key signs EdDSA, an EC \
                P-256 private key signs ES256, a secret file (no PEM block, at least 32 bytes, \
                not readable by others) signs HS256. The token carries iss, sub, aud, iat, exp, \
                a random jti, and scope and act when given. Repeated --act options make the \
                RFC 8693 delegation chain, the party acting now first.

                Examples:
                  mcpjail token issue --key ci.key --sub alice
                  mcpjail token issue --key ci.key --sub alice --scope "tools:read tools:call" --ttl 1h
                  mcpjail token issue --key ci.key --sub alice --act agent --act ide --kid ci
                  MCPJAIL_TOKEN=$(mcpjail token issue --key shared.key --sub ci --aud time) my-mcp-client
                """)

        @Option(help: ArgumentHelp("The private key or HS256 secret file to sign with.", valueName: "file"))
        var key: String

        @Option(help: ArgumentHelp("The subject (sub): who the calls are made for.", valueName: "sub"))
        var sub: String

        @Option(help: ArgumentHelp("Granted scopes, space-separated; may be repeated.", valueName: "scopes"))
        var scope: [String] = []

        @Option(help: ArgumentHelp("Lifetime, like 30s, 15m, 1h (at most 366 days).", valueName: "duration"))
        var ttl: String = "15m"

        @Option(help: ArgumentHelp("The audience (aud) the verifier expects.", valueName: "aud"))
        var aud: String = AuthConfiguration.defaultAudience

        @Option(help: ArgumentHelp("The issuer (iss) the verifier expects.", valueName: "iss"))
        var iss: String = AuthConfiguration.defaultIssuer

        @Option(help: ArgumentHelp("An actor in the act chain, outermost first; may be repeated.", valueName: "actor"))
        var act: [String] = []

        @Option(help: ArgumentHelp("The kid header: the verifier's key file name without extension.", valueName: "kid"))
        var kid: String?

        func run() async throws {
            do {
                let token = try await token(now: Date())
                writeStandardOutput(token + "\n")
            } catch {
                throw reportFailure(error)
            }
        }

        /// The token these options describe.
        func token(now: Date) async throws(MCPJailError) -> String {
            let request = TokenRequest(
                subject: sub,
                scopes: scope.flatMap { $0.split(whereSeparator: \.isWhitespace).map(String.init) },
                timeToLive: try TokenRequest.parseTimeToLive(ttl),
                audience: aud, issuer: iss, actors: act, keyID: kid)
            return try await TokenIssuer(keyFile: key).issue(request, now: now)
        }
    }

    /// `mcpjail token keygen`: writes a new key pair (or secret).
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Write a new signing key: PREFIX.key (private, mode 0600) and PREFIX.pub.",
            discussion: """
                EdDSA (Ed25519) and ES256 (EC P-256) write the private key as PKCS#8 PEM to \
                PREFIX.key and the public key as PEM to PREFIX.pub: the profile lists the .pub, \
                `token issue --key` takes the .key. HS256 writes only PREFIX.key, a random \
                256-bit secret that both sides use. Existing files are never overwritten. A \
                key's kid is its file name without the extension (PREFIX's last component).

                Examples:
                  mcpjail token keygen --alg EdDSA --out ci
                  mcpjail token keygen --alg ES256 --out /etc/mcpjail/keys/ops
                  mcpjail token keygen --alg HS256 --out shared
                """)

        @Option(help: ArgumentHelp("EdDSA, ES256 or HS256.", valueName: "alg"))
        var alg: String

        @Option(help: ArgumentHelp("Path prefix of the files to write.", valueName: "prefix"))
        var out: String

        func validate() throws {
            guard Self.algorithm(alg) != nil else {
                throw ValidationError("--alg must be EdDSA, ES256 or HS256, not '\(alg)'")
            }
            guard !out.isEmpty, !out.hasSuffix("/") else {
                throw ValidationError("--out is a path prefix like ./keys/ci, not a directory")
            }
        }

        func run() throws {
            do {
                writeStandardOutput(try output())
            } catch {
                throw reportFailure(error)
            }
        }

        /// Writes the key and describes what was written.
        func output() throws(MCPJailError) -> String {
            guard let algorithm = Self.algorithm(alg) else {
                throw MCPJailError(.invalidArgument, "--alg must be EdDSA, ES256 or HS256")
            }
            let written = try TokenKeyGenerator.generate(algorithm, prefix: out)
            if written.privateKeyFile == written.verificationKeyFile {
                return "wrote \(written.privateKeyFile) (\(algorithm.rawValue) shared secret, mode 0600)\n"
            }
            return "wrote \(written.privateKeyFile) (\(algorithm.rawValue) private key, mode 0600) and \(written.verificationKeyFile) (public key)\n"
        }

        /// The algorithm named by `text`, case-insensitively.
        static func algorithm(_ text: String) -> TokenAlgorithm? {
            TokenAlgorithm.allCases.first { $0.rawValue.lowercased() == text.lowercased() }
        }
    }
}
