import CCompresSAE

// The C ABI of libCompresSAE: library information and the thread setting.
// Every function of the C ABI only checks and converts its arguments, then
// calls the Swift API; `scripts/generate-header` turns the `@c` declarations
// and their `///` comments into include/compressae.h.

/// Version of the C ABI implemented by this library; equals CSAE_ABI_VERSION
/// of the header it was built with. Check it once at load time.
@c public func csae_abi_version() -> Int32 {
    CSAE_ABI_VERSION
}

/// Version of the library as a static NUL-terminated string, e.g. "0.1.0".
@c public func csae_version() -> UnsafePointer<CChar> {
    csae_internal_version()
}

/// Message of the last failed call on the calling thread ("" after a
/// successful call). The pointer stays valid until the thread's next call.
@c public func csae_last_error() -> UnsafePointer<CChar> {
    csae_internal_get_error()
}

/// Name of the BLAS used for the encoder GEMM, e.g. "OpenBLAS Haswell
/// (libopenblas.so.0)", or "none (built-in kernel)". Static string.
@c public func csae_blas_name() -> UnsafePointer<CChar> {
    GEMM.backendCName
}

/// Instruction set of the library's own vector kernels, chosen at load time
/// from the CPU: "avx2+fma" or "baseline" (x86-64 SSE2). Static string.
@c public func csae_vector_isa() -> UnsafePointer<CChar> {
    csae_internal_vector_isa()
}

/// Sets the process-wide default number of worker threads: what every call
/// given num_threads = 0 uses. Calls already running keep their count.
/// @param num_threads  >= 1, or 0 to restore the default: the environment's
///                     CSAE_NUM_THREADS, else OMP_NUM_THREADS (its first
///                     entry), else the CPUs this process may use (its
///                     affinity mask, capped by its cgroup's CPU quota),
///                     read once per process
/// @return CSAE_OK, or CSAE_ERR_INVALID_ARGUMENT for a negative count
@c public func csae_set_num_threads(_ num_threads: Int32) -> Int32 {
    withStatus { try Threads.setNumThreads(try threadsArgument(num_threads)) }
}

/// Number of worker threads a call given num_threads = 0 uses (see
/// csae_set_num_threads).
@c public func csae_get_num_threads() -> Int32 {
    Int32(clamping: Threads.numThreads)
}
