import Foundation

/// Hides secrets in what `orcastra config show` prints: the whole value of an option whose name says
/// it is a secret (token, password, secret), and the password inside a connection string (URL user
/// info, a `password=` query parameter, a `password=` key=value pair).
public enum SecretMasking {
    public static let mask = "****"

    public static func masked(_ value: String, forKey key: String) -> String {
        if ["token", "password", "secret"].contains(where: key.lowercased().contains) {
            return value.isEmpty ? value : mask
        }
        return maskedConnectionString(value)
    }

    public static func maskedConnectionString(_ value: String) -> String {
        var text = value
        // scheme://user:PASSWORD@host…: everything between the first ':' after '//' and the last '@' of the authority.
        if let schemeEnd = text.range(of: "://") {
            let afterScheme = text[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? text.endIndex
            let authority = text[schemeEnd.upperBound..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: mask)
            }
        }
        // password=… in a query string or a key=value conninfo (quoted or not).
        let pattern = #"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)"#
        if let expression = try? NSRegularExpression(pattern: pattern) {
            let range = NSRange(text.startIndex..., in: text)
            text = expression.stringByReplacingMatches(in: text, range: range, withTemplate: "$1\(mask)")
        }
        return text
    }
}
