import Foundation
import Testing
@testable import MCPJailCore

@Suite("Profile policy tables")
struct ProfilePolicyTests {
    @Test("defaults: tools denied, auth off, nothing exposed, no secrets")
    func defaults() throws {
        let sandbox = try ProfileSandbox()
        let profile = try sandbox.load("[server]\ncommand = \"\(try sandbox.executable())\"\n")
        #expect(profile.toolDefault == .deny)
        #expect(profile.auth == Profile.Auth())
        #expect(!profile.auth.required)
        #expect(profile.resources.allow == nil && profile.prompts.allow == nil)
        #expect(profile.secrets.isEmpty)
        #expect(!profile.audit.logArguments)
        #expect(profile.limits.callTimeout == .seconds(120))
        #expect(profile.policy(forTool: "anything") == nil)
    }

    @Test("every policy key is read")
    func fullPolicy() throws {
        let sandbox = try ProfileSandbox()
        let key = try sandbox.write("keys/issuer.pem", "-----BEGIN PUBLIC KEY-----\n")
        let profile = try sandbox.load("""
            [server]
            command = "\(try sandbox.executable())"
            [limits]
            call_timeout = "45s"
            [auth]
            required = true
            keys = ["\(key)"]
            issuer = "https://issuer.test"
            audience = "mcpjail:test"
            clock_skew = "5s"
            rate = "600/minute"
            [resources]
            allow = ["file:///srv/repo/**"]
            [prompts]
            allow = ["review_*"]
            [secrets]
            API_TOKEN = { env = "HOST_API_TOKEN" }
            DB_PASSWORD = { file = "/run/secrets/db" }
            [audit]
            log_arguments = true
            [tools]
            default = "deny"
            [tools.create_issue]
            scope = "repo:write"
            rate = "10/minute"
            timeout = "30s"
            strict = false
            [tools.create_issue.arguments]
            properties = { title = { maxLength = 80 }, priority = { enum = ["low", "high"] } }
            """)
        #expect(profile.limits.callTimeout == .seconds(45))
        #expect(profile.auth == Profile.Auth(
            required: true, keys: [key], issuer: "https://issuer.test", audience: "mcpjail:test",
            clockSkew: .seconds(5), rate: Profile.Rate(count: 600, period: .seconds(60))))
        #expect(profile.resources.allow == ["file:///srv/repo/**"])
        #expect(profile.prompts.allow == ["review_*"])
        #expect(profile.secrets == [
            Profile.Secret(name: "API_TOKEN", source: .environment("HOST_API_TOKEN")),
            Profile.Secret(name: "DB_PASSWORD", source: .file("/run/secrets/db")),
        ])
        #expect(profile.audit.logArguments)
        let tool = try #require(profile.tools["create_issue"])
        #expect(tool.scope == "repo:write")
        #expect(tool.rate == Profile.Rate(count: 10, period: .seconds(60)))
        #expect(tool.timeout == .seconds(30))
        #expect(tool.strict == false)
        #expect(tool.arguments == [
            "properties": ["title": ["maxLength": 80], "priority": ["enum": ["low", "high"]]],
        ])
        // The effective policy is itself a profile that reads back the same.
        let effective = profile.effectiveTOML()
        let reread = try ProfileParser.parse(
            data: Data(effective.utf8), path: "effective.toml", name: "test", profileDirectory: sandbox.root)
        #expect(reread.tools == profile.tools)
        #expect(reread.auth == profile.auth)
        #expect(reread.secrets == profile.secrets)
        #expect(reread.resources == profile.resources)
        #expect(reread.limits == profile.limits)
    }

    @Test("check says loudly that auth is off")
    func authOffIsFlagged() throws {
        let sandbox = try ProfileSandbox()
        let profile = try sandbox.load("[server]\ncommand = \"\(try sandbox.executable())\"\n")
        #expect(profile.effectiveTOML().contains("required = false  # OFF: calls are not authenticated"))
        #expect(profile.effectiveJSON().contains("\"required\" : false"))
    }

    @Test("bad policy values name the key")
    func badValues() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            [server]
            command = "\(try sandbox.executable())"
            [auth]
            required = true
            rate = "ten per minute"
            [secrets]
            "bad-name" = { env = "X" }
            BOTH = { env = "X", file = "/x" }
            NEITHER = {}
            [tools]
            default = "maybe"
            [tools.t]
            scope = "two scopes"
            rate = "5/fortnight"
            timeout = "1ms"
            strict = "yes"
            arguments = 5
            colour = "blue"
            """)
        let byKey = Dictionary(grouping: problems, by: \.keyPath)
        #expect(byKey["auth.rate"]?.first?.message.contains("not a rate") == true)
        #expect(byKey["auth.keys"]?.first?.message.contains("required when auth is required") == true)
        #expect(byKey["auth.issuer"] != nil && byKey["auth.audience"] != nil)
        #expect(byKey["secrets.bad-name"] != nil)
        #expect(byKey["secrets.BOTH"]?.first?.message.contains("either file or env") == true)
        #expect(byKey["secrets.NEITHER"] != nil)
        #expect(byKey["tools.default"]?.first?.message.contains("\"deny\", \"allow\"") == true)
        #expect(byKey["tools.t.scope"] != nil)
        #expect(byKey["tools.t.rate"] != nil)
        #expect(byKey["tools.t.timeout"]?.first?.message.contains("too short") == true)
        #expect(byKey["tools.t.strict"]?.first?.message.contains("true or false") == true)
        #expect(byKey["tools.t.arguments"] != nil)
        #expect(byKey["tools.t.colour"]?.first?.message.contains("unknown key") == true)
    }

    @Test("a secret also set in server.env is refused")
    func secretCollidesWithEnv() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            [server]
            command = "\(try sandbox.executable())"
            env = { TOKEN = "x" }
            [secrets]
            TOKEN = { env = "HOST_TOKEN" }
            """)
        #expect(problems.map(\.keyPath) == ["secrets.TOKEN"])
    }

    @Test("default = allow opens unlisted tools")
    func defaultAllow() throws {
        let sandbox = try ProfileSandbox()
        let profile = try sandbox.load("[server]\ncommand = \"\(try sandbox.executable())\"\n[tools]\ndefault = \"allow\"\n")
        #expect(profile.policy(forTool: "anything") == Profile.ToolPolicy())
    }
}

extension ProfilePolicyTests {
    @Test("an arguments fragment the validator cannot enforce is a profile error")
    func badFragment() throws {
        let sandbox = try ProfileSandbox()
        let problems = try sandbox.problems("""
            [server]
            command = "\(try sandbox.executable())"
            [tools.t.arguments]
            properties = { n = { type = 5 } }
            """)
        #expect(problems.map(\.keyPath) == ["tools.t.arguments"])
        #expect(problems.first?.message.contains("not a JSON Schema the relay can enforce") == true)
    }
}

extension ProfilePolicyTests {
    @Test("write tools: idempotency keys read, rendered and checked")
    func writeTools() throws {
        let sandbox = try ProfileSandbox()
        let profile = try sandbox.load("""
            [server]
            command = "\(try sandbox.executable())"
            [tools.pay]
            write = true
            idempotency_fields = ["order_id", "amount"]
            idempotency_ttl = "1h"
            [tools.read]
            """)
        let pay = try #require(profile.tools["pay"])
        #expect(pay.write && pay.idempotencyFields == ["order_id", "amount"] && pay.idempotencyTTL == .seconds(3600))
        #expect(profile.tools["read"]?.write == false)
        let reread = try ProfileParser.parse(
            data: Data(profile.effectiveTOML().utf8), path: "e.toml", name: "test", profileDirectory: sandbox.root)
        #expect(reread.tools == profile.tools)
        let problems = try sandbox.problems("""
            [server]
            command = "\(try sandbox.executable())"
            [tools.a]
            write = true
            idempotency_fields = []
            idempotency_ttl = "0s"
            [tools.b]
            idempotency_ttl = "1h"
            """)
        #expect(Set(problems.map(\.keyPath)) == ["tools.a.idempotency_fields", "tools.a.idempotency_ttl", "tools.b.write"])
    }
}
