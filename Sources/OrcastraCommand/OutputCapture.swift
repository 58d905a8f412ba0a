/// Keeps the first `limit` bytes of a stream and remembers whether more arrived.
///
/// Bytes past the limit are dropped rather than left unread: a child blocked on a full pipe would
/// otherwise never exit.
struct HeadCapture {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    private(set) var truncated = false

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        let room = limit - bytes.count
        if chunk.count <= room {
            bytes.append(contentsOf: chunk)
        } else {
            bytes.append(contentsOf: chunk.prefix(room))
            truncated = true
        }
    }
}

/// Keeps the last `limit` bytes of a stream, because the end of stderr is what explains a failure.
///
/// Storage is trimmed only when it reaches twice the limit, so appending stays amortised O(1) per byte
/// instead of shifting the buffer on every read.
struct TailCapture {
    let limit: Int
    private var storage: [UInt8] = []
    private var total = 0

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        total += chunk.count
        guard limit > 0 else { return }
        if chunk.count >= limit {
            storage.removeAll(keepingCapacity: true)
            storage.append(contentsOf: chunk.suffix(limit))
            return
        }
        storage.append(contentsOf: chunk)
        if storage.count >= 2 * limit {
            storage.removeFirst(storage.count - limit)
        }
    }

    var bytes: [UInt8] {
        storage.count > limit ? Array(storage.suffix(limit)) : storage
    }

    var truncated: Bool { total > limit }
}
