import ArgumentParser

// Placeholder replaced by its owner during this change.
struct Check: AsyncParsableCommand {
    func run() async throws {}
}
