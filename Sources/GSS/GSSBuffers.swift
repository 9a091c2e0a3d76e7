import CGSSAPI

/// Calls `body` with a C buffer over `bytes`, or `GSS_C_NO_BUFFER` when nil.
func withOptionalBuffer<R>(_ bytes: [UInt8]?, _ body: (gss_buffer_t?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { raw in
        var buffer = gss_buffer_desc(length: raw.count, value: UnsafeMutableRawPointer(mutating: raw.baseAddress))
        return body(&buffer)
    }
}

/// Calls `body` with C channel bindings, or `GSS_C_NO_CHANNEL_BINDINGS` when nil.
func withOptionalBindings<R>(_ bindings: GSSChannelBindings?, _ body: (gss_channel_bindings_t?) -> R) -> R {
    guard let bindings else { return body(nil) }
    return bindings.withC { body($0) }
}
