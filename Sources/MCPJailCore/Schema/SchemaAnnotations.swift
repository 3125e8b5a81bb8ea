/// A set of member or element indices of one instance, for `unevaluatedProperties` /
/// `unevaluatedItems`. Up to 64 indices live inline; more spill to an array, so the common
/// small object costs no allocation.
struct EvaluatedIndices {
    private var small: UInt64 = 0
    private var large: [UInt64] = []
    /// Every index (set by `items`, `additionalProperties`, `unevaluated*`).
    private(set) var all = false

    mutating func insert(_ index: Int) {
        if all { return }
        if index < 64 {
            small |= 1 << UInt64(index)
            return
        }
        let word = index / 64 - 1
        if large.count <= word { large.append(contentsOf: repeatElement(0, count: word + 1 - large.count)) }
        large[word] |= 1 << UInt64(index % 64)
    }

    mutating func insertAll() {
        all = true
        small = 0
        large = []
    }

    /// Inserts `0..<end`.
    mutating func insert(upTo end: Int) {
        if all { return }
        for index in 0..<end { insert(index) }
    }

    func contains(_ index: Int) -> Bool {
        if all { return true }
        if index < 64 { return small & (1 << UInt64(index)) != 0 }
        let word = index / 64 - 1
        return word < large.count && large[word] & (1 << UInt64(index % 64)) != 0
    }

    mutating func formUnion(_ other: EvaluatedIndices) {
        if all { return }
        if other.all {
            insertAll()
            return
        }
        small |= other.small
        if large.count < other.large.count {
            large.append(contentsOf: repeatElement(0, count: other.large.count - large.count))
        }
        for (i, word) in other.large.enumerated() { large[i] |= word }
    }
}

/// The annotations `unevaluatedProperties` and `unevaluatedItems` read: which members and
/// elements of the current instance some subschema evaluated successfully.
///
/// Collected only while `active` (a node at this instance location has an `unevaluated*`
/// keyword, or strict mode closes it); otherwise every record is a no-op.
struct SchemaAnnotations {
    let active: Bool
    var properties = EvaluatedIndices()
    var items = EvaluatedIndices()

    init(active: Bool) { self.active = active }

    static var inactive: SchemaAnnotations { SchemaAnnotations(active: false) }

    mutating func merge(_ other: SchemaAnnotations) {
        guard active else { return }
        properties.formUnion(other.properties)
        items.formUnion(other.items)
    }
}
