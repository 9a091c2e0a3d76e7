import Directory
import Hosts

/// Rule A6, the round trip, is not a separate check: it emerges from rule A1.
///
/// Signed on to TestServer01 (CredSSP), moving a VM to TestServer02 works (A1 holds: the move
/// runs from a sign-on on its source). Moving it back from that same sign-on makes TestServer02
/// the source, where the user has no sign-on, so A1 fails with the seed's error naming
/// TestServer01. ``A1CredSSPSignOn`` reports that failure with rule A1 and related rule A6,
/// and this type words the explanation.
enum A6RoundTrip {
    /// The move runs from the user's sign-on on the destination, and the VM came to the source
    /// from that destination: the way back.
    static func isRoundTrip(_ ctx: MoveContext) -> Bool {
        guard ctx.origin.key == ctx.destination.key, ctx.origin.key != ctx.source.key,
              let previous = ctx.source.virtualMachines[ctx.move.keys.vm]?.previousHost else { return false }
        return ServiceTarget.shortKey(previous) == ctx.destination.key
    }

    static func explanation(_ ctx: MoveContext) -> String {
        let s = ctx.source.name, d = ctx.destination.name, vm = ctx.move.vm
        let signOns = ctx.source.signOns.filter { $0.user == ctx.user }
        let there = signOns.isEmpty ? "you have no sign-on on \(s)"
            : "your only sessions on \(s) (\(signOns.map(\.kind.rawValue).joined(separator: ", "))) are not where this move runs"
        return "This is the round trip of the article: \(vm) was moved from \(d) to \(s), and you are moving it back from your \(ctx.session.kind.rawValue) session on \(d). That makes \(s) the source, and with CredSSP the source needs a sign-on of yours that starts the move; \(there)."
    }
}
