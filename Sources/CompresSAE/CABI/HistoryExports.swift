import CCompresSAE

// The C ABI of the training histories.

/// Copies one of the series the last csae_model_train call recorded.
/// The length and the values are read together (a training call running
/// meanwhile appends to the series between its steps).
/// @param which     a csae_history value: CSAE_HISTORY_TRAINING_LOSS (one per
///                  step), CSAE_HISTORY_VALIDATION_LOSS (one per epoch when
///                  validation_fraction > 0) or CSAE_HISTORY_DEAD_LATENTS
///                  (one per step)
/// @param out       receives the first min(capacity, length) values; may be
///                  NULL when capacity is 0 (to ask for the length alone)
/// @param capacity  size of out in floats (>= 0)
/// @param length    receives the series' full length (may be NULL)
/// @return CSAE_OK, CSAE_ERR_INVALID_HANDLE, or CSAE_ERR_INVALID_ARGUMENT
///         (unknown which, negative capacity, NULL out with capacity > 0)
@c public func csae_model_copy_history(
    _ model: ConstModelHandle?, _ which: Int32, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64,
    _ length: UnsafeMutablePointer<Int64>?
) -> Int32 {
    withStatus {
        let m = try modelHandles.lookup(model)
        let kind = try historyKind(which)
        guard capacity >= 0 else { throw CompresSAEError.invalid("capacity must be >= 0, got \(capacity)") }
        let buffer = capacity == 0 ? nil : try requireMutableBuffer(out, "out", count: capacity, "capacity")
        m.withHistory(kind) { values in
            if let buffer {
                for i in 0..<min(buffer.count, values.count) { buffer[i] = values[i] }
            }
            length?.pointee = Int64(values.count)
        }
    }
}

/// The history a csae_history value names.
func historyKind(_ which: Int32) throws -> CompresSAEModel.HistoryKind {
    switch which {
    case Int32(CSAE_HISTORY_TRAINING_LOSS.rawValue): return .loss
    case Int32(CSAE_HISTORY_VALIDATION_LOSS.rawValue): return .validation
    case Int32(CSAE_HISTORY_DEAD_LATENTS.rawValue): return .deadLatents
    default:
        throw CompresSAEError.invalid(
            "which must be CSAE_HISTORY_TRAINING_LOSS, CSAE_HISTORY_VALIDATION_LOSS or CSAE_HISTORY_DEAD_LATENTS, got \(which)")
    }
}
