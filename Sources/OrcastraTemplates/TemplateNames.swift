/// The one character set for every name in a template.
///
/// Names end up in SQL identifiers' neighbourhood (NOTIFY channels per
/// namespace, URLs, CLI arguments, log lines), so they are kept to a set that
/// needs no quoting anywhere: a lowercase letter, then up to 62 lowercase
/// letters, digits, `_` or `-`. Handler names may also contain `.` so they can
/// be grouped (`orders.charge_card`).
public enum TemplateNames {
    /// Longest allowed name, in characters.
    public static let maximumLength = 63

    /// The rule in words, for error messages and docs.
    public static let rule = "start with a lowercase letter and contain only lowercase letters, digits, '_' and '-' (at most 63 characters)"
    /// The handler rule in words.
    public static let handlerRule = "start with a lowercase letter and contain only lowercase letters, digits, '_', '-' and '.' (at most 63 characters)"

    /// Whether `name` follows the rule (`^[a-z][a-z0-9_-]{0,62}$`, plus `.` when `allowDots`).
    public static func isValid(_ name: String, allowDots: Bool = false) -> Bool {
        problem(with: name, allowDots: allowDots) == nil
    }

    /// What exactly is wrong with `name`, or nil when it is fine.
    public static func problem(with name: String, allowDots: Bool) -> String? {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first else { return "it is empty" }
        if scalars.count > maximumLength {
            return "it is \(scalars.count) characters long"
        }
        if !("a"..."z").contains(first) {
            return "it starts with '\(first)'"
        }
        for scalar in scalars.dropFirst() {
            let ok = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "_" || scalar == "-" || (allowDots && scalar == ".")
            if !ok { return "it contains '\(scalar)'" }
        }
        return nil
    }

    /// A corrected spelling to offer, e.g. `Charge Card` → `charge_card`, or
    /// nil when no simple fix yields a valid name.
    static func fixedSpelling(of name: String, allowDots: Bool) -> String? {
        var result = ""
        // Accents go rather than whole letters: café → cafe, not caf.
        let folded = name.folding(options: [.diacriticInsensitive, .caseInsensitive, .widthInsensitive], locale: nil)
        for scalar in folded.lowercased().unicodeScalars {
            if ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "_" || scalar == "-" || (allowDots && scalar == ".") {
                result.unicodeScalars.append(scalar)
            } else if scalar == " " || scalar == "." || scalar == "/" {
                result += "_"
            }
        }
        guard result != name, isValid(result, allowDots: allowDots) else { return nil }
        return result
    }
}
