/// `HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT`: where a listener binds.
public struct ListenAddress: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(_ address: String) throws(ListenAddressError) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw ListenAddressError(address: address)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
}

public struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    public var address: String
    public var description: String { "'\(address)' is not an address to listen on: write HOST:PORT, e.g. 127.0.0.1:9464 or :9464." }
}
