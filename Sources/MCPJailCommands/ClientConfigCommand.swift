import ArgumentParser

// Placeholder replaced by its owner during this change.
struct ClientConfig: AsyncParsableCommand {
    func run() async throws {}
}
