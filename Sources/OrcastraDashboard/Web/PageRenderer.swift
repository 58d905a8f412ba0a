import Mustache

/// Renders a page: its own template into the layout.
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    init() {
        var library = MustacheLibrary()
        for (name, text) in PageTemplates.all {
            do {
                try library.register(text, named: name)
            } catch {
                // The templates are constants of this module; a test renders each one.
                preconditionFailure("dashboard template \(name) does not parse: \(error)")
            }
        }
        self.library = library
    }

    /// - Parameters:
    ///   - page: the template's name.
    ///   - values: its context.
    ///   - layout: title, session, notice, nav flags.
    func render(_ page: String, _ values: [String: Any], layout: [String: Any]) -> String {
        var frame = layout
        frame["body"] = library.render(values, withTemplate: page) ?? ""
        return library.render(frame, withTemplate: "layout") ?? ""
    }
}
