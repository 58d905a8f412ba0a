/// How a task or step state is shown: a CSS class for its colour, and an icon and words so the
/// state is clear without colour (and to a screen reader).
public struct StateLabel: Sendable, Hashable {
    public var state: String
    public var icon: String
    public var text: String
    /// `st-in_progress` etc.; dashboard.css colours each with AA contrast.
    public var cssClass: String { "st-\(state)" }

    public init(_ state: String) {
        self.state = state
        switch state {
        case "pending": (icon, text) = ("◌", "pending")
        case "enqueued": (icon, text) = ("…", "enqueued")
        case "in_progress": (icon, text) = ("▶", "running")
        case "waiting_for_retry": (icon, text) = ("↻", "waiting for retry")
        case "complete": (icon, text) = ("✓", "complete")
        case "error": (icon, text) = ("✗", "error")
        case "cancelled": (icon, text) = ("⊘", "cancelled")
        case "resolved_manually": (icon, text) = ("✎", "resolved by hand")
        case "skipped": (icon, text) = ("⤼", "skipped")
        default: (icon, text) = ("?", state)
        }
    }

    /// For the templates: `{{#state}}<span class="{{css}}">{{icon}} {{text}}</span>{{/state}}`.
    var context: [String: Any] { ["state": state, "icon": icon, "text": text, "css": cssClass] }
}
