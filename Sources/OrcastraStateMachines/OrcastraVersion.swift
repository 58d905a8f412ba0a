/// The version every executable reports with `--version` (`orcastra`, `orcastra-worker`,
/// `orcastra-orchestrator`): one number for the whole package.
public enum OrcastraVersion {
    public static let current = "0.1.0"
}
