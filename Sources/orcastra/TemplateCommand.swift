import ArgumentParser

/// `orcastra template …`: each subcommand in a file of its own (Template*Command.swift).
struct TemplateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Validate, register, inspect and retire workflow templates.",
        discussion: "The YAML format and a template's lifecycle are described in docs/templates.md.",
        subcommands: [Validate.self, Register.self, List.self, Show.self, Diff.self, Default.self, Deprecate.self]
    )
}
