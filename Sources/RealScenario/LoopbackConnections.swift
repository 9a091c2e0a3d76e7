import Foundation

/// Counts TCP connections the kernel has established to a listening loopback endpoint, from
/// `/proc/net/tcp` — also those a paused (SIGSTOPped) daemon has not accepted yet, which wait in
/// its backlog. Lets the runner resume a paused destination only once every move has connected.
enum LoopbackConnections {
    /// Client-side sockets in state ESTABLISHED whose remote end is `address:port`.
    static func established(to address: String, port: Int) -> Int {
        guard let remote = procKey(address, port),
              let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { continue }
            if fields[2] == remote && fields[3] == "01" { count += 1 }
        }
        return count
    }

    /// Server-side sockets in state ESTABLISHED at `address:port` with bytes not yet read (the
    /// `rx_queue` half of `tx_queue:rx_queue`): connections whose client has already written.
    static func withUnreadData(at address: String, port: Int) -> Int {
        guard let local = procKey(address, port),
              let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 4, fields[1] == local, fields[3] == "01" else { continue }
            let queues = fields[4].split(separator: ":")
            if queues.count == 2, let unread = UInt64(queues[1], radix: 16), unread > 0 { count += 1 }
        }
        return count
    }

    /// `/proc/net/tcp`'s spelling of an IPv4 endpoint: the address as a little-endian hex word.
    static func procKey(_ address: String, _ port: Int) -> Substring? {
        let octets = address.split(separator: ".").compactMap { UInt8($0) }
        guard octets.count == 4, (0...65535).contains(port) else { return nil }
        let hex = octets.reversed().map { String($0, radix: 16, uppercase: true).leftPadded(2) }.joined()
        return Substring(hex + ":" + String(port, radix: 16, uppercase: true).leftPadded(4))
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
