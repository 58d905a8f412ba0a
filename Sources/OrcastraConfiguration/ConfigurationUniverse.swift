import ArgumentParser

/// Every key orcastra.yaml and `ORCASTRA_*` may set: the options of the option groups shared by all
/// commands (the database), and of each long-running executable (a scope: `orchestrator`,
/// `worker`). Read from the option types themselves, so a flag added to one of them is a key at
/// once.
public struct ConfigurationUniverse: Sendable {
    public struct Scope: Sendable {
        public var name: String
        /// The scope's options and the shared ones, without repeats.
        public var options: [OptionSpec]
    }

    public var shared: [OptionSpec]
    public var scopes: [Scope]

    public init(shared: [any ParsableArguments.Type], scopes: [(name: String, types: [any ParsableArguments.Type])]) {
        let sharedOptions = Self.unique(shared.flatMap { CommandSchema.of($0).options })
        self.shared = sharedOptions
        self.scopes = scopes.map { scope in
            Scope(name: scope.name, options: Self.unique(scope.types.flatMap { CommandSchema.of($0).options } + sharedOptions))
        }
    }

    /// The options a command of `scope` takes from the file and the environment (nil: a command of
    /// no scope, such as `orcastra submit`, takes only the shared ones).
    public func options(inScope scope: String?) -> [OptionSpec] {
        guard let scope else { return shared }
        return scopes.first { $0.name == scope }?.options ?? shared
    }

    /// Keys valid at the top of the file: those of any scope.
    public var allOptions: [OptionSpec] {
        Self.unique(shared + scopes.flatMap(\.options))
    }

    public var scopeNames: [String] { scopes.map(\.name) }

    static func unique(_ options: [OptionSpec]) -> [OptionSpec] {
        var seen: Set<String> = []
        return options.filter { seen.insert($0.name).inserted }
    }
}
