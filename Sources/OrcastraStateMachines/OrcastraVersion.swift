/// The version every executable reports with `--version` (`orcastra`, `orcastra-worker`,
/// `orcastra-orchestrator`) and a worker records in the registry (`orcastra worker list`): one
/// number for the whole package. It lives in this dependency-free module so that the worker
/// library can report it too; OrcastraCommandLine re-exports it.
public enum OrcastraVersion {
    public static let current = "0.1.0"
}
