/// What the orchestrator does with fire times that passed while it was not running (or the
/// schedule was paused): start one task for the latest, one for each, or none.
public enum CatchUpPolicy: String, Sendable, CaseIterable, Codable {
    case latest, all, none
}

/// What happens when a schedule fires while its previous task is still running.
public enum OverlapPolicy: String, Sendable, CaseIterable, Codable {
    case allow, skip, cancelPrevious = "cancel_previous"
}
