/// The former `threads:` labels of the model's methods, kept so existing
/// callers still compile (with a warning); C, Python and `TrainingOptions`
/// all name the count `numThreads`.
extension CompresSAEModel {
    @available(*, deprecated, renamed: "encode(_:rows:k:indices:values:numThreads:)")
    public func encode(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int? = nil,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) throws {
        try encode(x, rows: rows, k: k, indices: indices, values: values, numThreads: threads)
    }

    @available(*, deprecated, renamed: "encode(_:rows:k:refit:numThreads:)")
    public func encode(_ x: [Float], rows: Int, k: Int? = nil, refit: Bool = false, threads: Int) throws -> SparseCodes {
        try encode(x, rows: rows, k: k, refit: refit, numThreads: threads)
    }

    @available(*, deprecated, renamed: "preactivations(_:rows:into:numThreads:)")
    public func preactivations(
        _ x: UnsafeBufferPointer<Float>, rows: Int, into out: UnsafeMutableBufferPointer<Float>, threads: Int
    ) throws {
        try preactivations(x, rows: rows, into: out, numThreads: threads)
    }

    @available(*, deprecated, renamed: "decode(indices:values:rows:k:into:numThreads:)")
    public func decode(
        indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        into out: UnsafeMutableBufferPointer<Float>, threads: Int
    ) throws {
        try decode(indices: indices, values: values, rows: rows, k: k, into: out, numThreads: threads)
    }

    @available(*, deprecated, renamed: "decode(_:numThreads:)")
    public func decode(_ codes: SparseCodes, threads: Int) throws -> [Float] {
        try decode(codes, numThreads: threads)
    }

    @available(*, deprecated, renamed: "refit(_:rows:k:indices:values:numThreads:)")
    public func refit(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) throws {
        try refit(x, rows: rows, k: k, indices: indices, values: values, numThreads: threads)
    }

    @available(*, deprecated, renamed: "encodeRefitted(_:rows:k:indices:values:numThreads:)")
    public func encodeRefitted(
        _ x: UnsafeBufferPointer<Float>, rows: Int, k: Int? = nil,
        indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>,
        threads: Int
    ) throws {
        try encodeRefitted(x, rows: rows, k: k, indices: indices, values: values, numThreads: threads)
    }

    @available(*, deprecated, renamed: "lossAndGradients(_:rows:withGradients:numThreads:)")
    public func lossAndGradients(
        _ x: UnsafeBufferPointer<Float>, rows: Int, withGradients: Bool = true, threads: Int
    ) throws -> (LossReport, Gradients?) {
        try lossAndGradients(x, rows: rows, withGradients: withGradients, numThreads: threads)
    }
}
