import ArgumentParser
import Foundation

/// Every key orcastra.yaml and `ORCASTRA_*` may set: the options of the option groups shared by all
/// commands (the database), and of each long-running executable (a scope: `orchestrator`,
/// `worker`). Read from the option types themselves, so a flag added to one of them is a key at
/// once. Each list is read from the parser on first use only: a command that needs no file and
/// no other scope pays for none of them.
public struct ConfigurationUniverse: Sendable {
    public let scopeNames: [String]
    private let sharedOptions: OptionList
    private let scopeOptions: [String: OptionList]

    public init(shared: [any ParsableArguments.Type], scopes: [(name: String, types: [any ParsableArguments.Type])]) {
        scopeNames = scopes.map(\.name)
        sharedOptions = OptionList(shared, plus: nil)
        var byName: [String: OptionList] = [:]
        for scope in scopes { byName[scope.name] = OptionList(scope.types, plus: sharedOptions) }
        scopeOptions = byName
    }

    /// The options shared by every command (the database).
    public var shared: [OptionSpec] { sharedOptions.options }

    /// The options a command of `scope` takes from the file and the environment, the shared ones
    /// included (nil: a command of no scope, such as `orcastra submit`, takes only the shared ones).
    public func options(inScope scope: String?) -> [OptionSpec] {
        guard let scope, let list = scopeOptions[scope] else { return shared }
        return list.options
    }

    /// Keys valid at the top of the file: those of any scope.
    public var allOptions: [OptionSpec] {
        Self.unique(shared + scopeNames.flatMap { options(inScope: $0) })
    }

    static func unique(_ options: [OptionSpec]) -> [OptionSpec] {
        var seen: Set<String> = []
        return options.filter { seen.insert($0.name).inserted }
    }
}

/// The options of some option types, read from the parser once, when first asked for.
private final class OptionList: @unchecked Sendable {
    private let types: [any ParsableArguments.Type]
    private let plus: OptionList?
    private let lock = NSLock()
    private var cached: [OptionSpec]?

    init(_ types: [any ParsableArguments.Type], plus: OptionList?) {
        self.types = types
        self.plus = plus
    }

    var options: [OptionSpec] {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let read = ConfigurationUniverse.unique(types.flatMap { CommandSchema.of($0).options } + (plus?.options ?? []))
        cached = read
        return read
    }
}
