/// Decodes a `waitpid` status. The C macros (`WIFEXITED` and friends) are not imported into Swift.
enum WaitStatus {
    static func termination(_ status: Int32) -> CommandOutcome.Termination {
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }
}
