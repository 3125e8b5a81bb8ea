import ArgumentParser

// Placeholder replaced during this change.
struct Run: AsyncParsableCommand {
    func run() async throws {}
}
