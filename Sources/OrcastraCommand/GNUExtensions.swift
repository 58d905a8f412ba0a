#if canImport(Glibc)
import Glibc
#endif

/// glibc functions that Swift's `Glibc` module does not import, because they are declared only
/// under `_GNU_SOURCE`. They are looked up at run time instead of through a C shim so this module
/// stays a single Swift target. Each is `nil` when the C library lacks it.
enum GNUExtensions {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// `pipe2` creates both ends already close-on-exec. `pipe` + `fcntl` leaves a window in which a
    /// command spawned concurrently on another thread inherits the new pipe and holds it open, so the
    /// first command's reader never sees end-of-file until the other one exits.
    static let pipe2: Pipe2? = lookup("pipe2")

    /// Changes directory in the child between fork and exec (glibc 2.29+); the parent's working
    /// directory is process-wide and must not be touched.
    static let addChdir: AddChdir? = lookup("posix_spawn_file_actions_addchdir_np")

    /// Closes every descriptor above stderr in the child (glibc 2.34+), so a step never inherits a
    /// descriptor some other library opened without close-on-exec (a database socket, say).
    static let addClosefrom: AddClosefrom? = lookup("posix_spawn_file_actions_addclosefrom_np")

    private static func lookup<Function>(_ name: String) -> Function? {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: Function.self)
    }
}
