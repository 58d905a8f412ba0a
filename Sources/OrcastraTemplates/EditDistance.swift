/// Typo suggestions ("did you mean …") for keys, step names and type names.
///
/// Plain Levenshtein distance over Unicode scalars is enough here: the
/// candidate lists are short (a dozen keys, a few hundred step names at most).
public enum EditDistance {
    /// Number of single-character insertions, deletions, substitutions and
    /// swaps of two neighbours turning `a` into `b` (optimal string
    /// alignment). Swaps count as one edit because `fecth` for `fetch` is the
    /// most common typo of all. Three rows of memory, no recursion.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var beforePrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[b.count]
    }

    /// The closest candidate, if it is close enough to be a plausible typo:
    /// 1 edit for words up to 3 characters, else a third of the length,
    /// between 2 and 3. Ties go to the earlier candidate so suggestions are
    /// deterministic.
    public static func suggestion(for word: String, among candidates: [String]) -> String? {
        let limit = word.count <= 3 ? 1 : max(2, min(3, word.count / 3))
        var best: (candidate: String, distance: Int)?
        for candidate in candidates where candidate != word {
            let d = distance(word.lowercased(), candidate.lowercased())
            if d <= limit, d < (best?.distance ?? Int.max) {
                best = (candidate, d)
            }
        }
        return best?.candidate
    }

    /// `"; did you mean 'x'?"` or an empty string, ready to splice into a message.
    public static func didYouMean(_ word: String, among candidates: [String]) -> String {
        guard let match = suggestion(for: word, among: candidates) else { return "" }
        return "; did you mean '\(match)'?"
    }
}
