import CompressNIO
import Foundation
import NIOCore

/// `orcastra prune --archive`'s output: a gzip file of JSON Lines, one gzip member per batch.
///
/// Concatenated gzip members are one valid gzip stream (RFC 1952 §2.2: `gzip -dc` reads them all),
/// so each batch is compressed whole and appended, then flushed to disk before the batch's
/// DELETE runs: what a committed batch deleted is always in the file. Compression is
/// adam-fowler/compress-nio (zlib).
final class ArchiveFile: Sendable {
    let url: URL
    private let handle: FileHandle

    /// Creates `orcastra-prune-<UTC time>.jsonl.gz` in `directory`; never overwrites.
    init(in directory: URL) throws {
        let stamp = Date().formatted(Date.ISO8601FormatStyle(timeSeparator: .omitted).year().month().day().dateSeparator(.omitted)
            .time(includingFractionalSeconds: false))
        var url = directory.appendingPathComponent("orcastra-prune-\(stamp).jsonl.gz")
        var suffix = 1
        while FileManager.default.fileExists(atPath: url.path) {
            suffix += 1
            url = directory.appendingPathComponent("orcastra-prune-\(stamp)-\(suffix).jsonl.gz")
        }
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CLIFailure(message: "--archive: cannot create \(url.path); check the folder's permissions and free space.", exitCode: .failure)
        }
        self.url = url
        handle = try FileHandle(forWritingTo: url)
    }

    /// Compresses `text` as one gzip member, appends it and flushes it to disk; returns the bytes written.
    func append(_ text: String) throws -> Int {
        var input = ByteBuffer(string: text)
        let compressed = try input.compress(with: .gzip())
        let data = Data(compressed.readableBytesView)
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            throw CLIFailure(message: "--archive: writing \(url.path) failed (\(error.localizedDescription)); nothing of this batch was deleted.", exitCode: .failure)
        }
        return data.count
    }

    func close() throws {
        try handle.close()
    }
}
