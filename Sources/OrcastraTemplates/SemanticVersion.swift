/// A template version, `MAJOR.MINOR.PATCH` with an optional `-prerelease`.
///
/// Versions are immutable once registered, so they are compared by semver
/// precedence to find "the latest" and printed back exactly as written.
/// Build metadata (`+build`) is refused: semver ignores it for precedence,
/// which would let two different definitions claim the same version.
public struct SemanticVersion: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    /// Dot-separated prerelease identifiers (`["rc", "1"]` for `-rc.1`); empty for a release.
    public var prerelease: [String]

    public init(major: Int, minor: Int, patch: Int, prerelease: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
    }

    public init(parsing text: String) throws(SemanticVersionError) {
        let example = "write it as MAJOR.MINOR.PATCH, like 1.0.0 or 2.1.0-rc.1"
        if text.contains("+") {
            throw SemanticVersionError("'\(text)' has build metadata (+…), which is not supported; use a prerelease such as 1.0.0-beta.2 instead")
        }
        let dash = text.firstIndex(of: "-")
        let core = dash.map { text[..<$0] } ?? Substring(text)
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw SemanticVersionError("'\(text)' is not a semantic version; \(example)")
        }
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(part) else {
                throw SemanticVersionError("'\(text)' is not a semantic version; \(example)")
            }
            if part.count > 1 && part.hasPrefix("0") {
                throw SemanticVersionError("'\(text)' has a leading zero in '\(part)'; \(example)")
            }
            numbers.append(value)
        }
        var identifiers: [String] = []
        if let dash {
            let tail = text[text.index(after: dash)...]
            for identifier in tail.split(separator: ".", omittingEmptySubsequences: false) {
                let valid = !identifier.isEmpty && identifier.allSatisfy {
                    $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-")
                }
                guard valid else {
                    throw SemanticVersionError("'\(text)' has an invalid prerelease part '\(identifier)'; use letters, digits and '-' separated by dots, like 1.0.0-rc.1")
                }
                if identifier.allSatisfy(\.isNumber), identifier.count > 1, identifier.hasPrefix("0") {
                    throw SemanticVersionError("'\(text)' has a leading zero in prerelease part '\(identifier)'; \(example)")
                }
                identifiers.append(String(identifier))
            }
        }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2], prerelease: identifiers)
    }

    public var description: String {
        let core = "\(major).\(minor).\(patch)"
        return prerelease.isEmpty ? core : core + "-" + prerelease.joined(separator: ".")
    }

    /// Precedence per semver.org §11: numeric parts, then a prerelease sorts
    /// before the release; identifiers compare numerically when both are
    /// numbers, numbers before text, otherwise ASCII order, and a longer list
    /// wins when all shared identifiers are equal.
    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        if (lhs.major, lhs.minor, lhs.patch) != (rhs.major, rhs.minor, rhs.patch) {
            return (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        switch (lhs.prerelease.isEmpty, rhs.prerelease.isEmpty) {
        case (true, _): return false
        case (false, true): return true
        case (false, false): break
        }
        for (a, b) in zip(lhs.prerelease, rhs.prerelease) where a != b {
            switch (Int(a), Int(b)) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            case (nil, nil): return a < b
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }

    /// Encoded as its text (`"1.2.0-rc.1"`), the form people search for.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Why a version string was refused.
public struct SemanticVersionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
