import ArgumentParser

// Placeholder replaced by its owner during this change.
struct List: AsyncParsableCommand {
    func run() async throws {}
}
