/// Rule A6, the round trip, is not a separate check: it emerges from rule A1.
///
/// Signed on to TestServer01 (CredSSP), moving a VM to TestServer02 works (A1 holds: the move
/// runs from a sign-on on its source). Moving it back from that same sign-on makes TestServer02
/// the source, where the user has no sign-on, so A1 fails with the seed's error naming
/// TestServer01. ``A1CredSSPSignOn`` reports that failure with rule A1 and related rule A6,
/// and this type words the explanation.
enum A6RoundTrip {
    /// The move runs from the user's sign-on on the destination: the typical way back.
    static func isRoundTrip(_ ctx: MoveContext) -> Bool {
        ctx.origin.key == ctx.destination.key && ctx.origin.key != ctx.source.key
    }

    static func explanation(_ ctx: MoveContext) -> String {
        let s = ctx.source.name, d = ctx.destination.name
        return "This is the round trip of the article: you are signed on to \(d) and the virtual machine now runs on \(s). Moving it back makes \(s) the source, and with CredSSP the source needs a sign-on of yours; you have none on \(s). Sign on to \(s) and start the move there."
    }
}
