import ArgumentParser

// Placeholder replaced by its owner during this change.
struct Logs: AsyncParsableCommand {
    func run() async throws {}
}
