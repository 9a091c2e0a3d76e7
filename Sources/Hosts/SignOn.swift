import Foundation

import Directory

/// How a user is signed on to a host.
public enum SignOnKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Interactive at the console: the user's credentials are on the host.
    case console
    /// Remote Desktop: interactive, credentials on the host.
    case remoteDesktop = "remote-desktop"
    /// PowerShell remoting with Kerberos: a network logon, no reusable credentials on the host.
    case remoteShellKerberos = "remote-shell-kerberos"
    /// PowerShell remoting with CredSSP: the user's credentials were delegated to the host.
    case remoteShellCredSSP = "remote-shell-credssp"

    /// Whether the user's reusable credentials are present on the host in this session (rule A1).
    public var hasReusableCredentials: Bool { self != .remoteShellKerberos }

    /// Whether the session is a remote shell (WinRM), which matters for rule A2b.
    public var isRemoteShell: Bool { self == .remoteShellKerberos || self == .remoteShellCredSSP }

    public init?(parsing text: String) {
        switch text.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "console", "local": self = .console
        case "remote-desktop", "rdp", "remotedesktop": self = .remoteDesktop
        case "remote-shell-kerberos", "winrm", "remote-shell", "pssession", "kerberos": self = .remoteShellKerberos
        case "remote-shell-credssp", "credssp": self = .remoteShellCredSSP
        default: return nil
        }
    }
}

/// A user's session on a host.
public struct SignOn: Sendable, Hashable, Codable {
    public var user: PrincipalRef
    public var kind: SignOnKind
    /// For remote sessions, the host (lower-cased short name) the user connected from.
    public var from: String?
    public var since: SimTime

    public init(user: PrincipalRef, kind: SignOnKind, from: String? = nil, since: SimTime = .zero) {
        self.user = user
        self.kind = kind
        self.from = from?.lowercased()
        self.since = since
    }
}
