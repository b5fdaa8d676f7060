import CompresSAE
import CCompresSAE

// The params helpers of include/compressae.h are static inline C functions
// over the exported csae_*_init; Swift does not import that part of
// the header, so these are the same helpers for Swift callers of the C ABI.
// The fuzz harness (Tests/Fuzz/Sources/compressae-fuzz) compiles this file
// too, through a symbolic link.

func csae_train_default_params() -> csae_train_params {
    var params = csae_train_params()
    _ = csae_train_params_init(&params, UInt32(MemoryLayout<csae_train_params>.size), Int32(CSAE_RECIPE_DEFAULT.rawValue))
    return params
}

func csae_train_reference_params() -> csae_train_params {
    var params = csae_train_params()
    _ = csae_train_params_init(&params, UInt32(MemoryLayout<csae_train_params>.size), Int32(CSAE_RECIPE_REFERENCE.rawValue))
    return params
}

func csae_encode_default_params() -> csae_encode_params {
    var params = csae_encode_params()
    _ = csae_encode_params_init(&params, UInt32(MemoryLayout<csae_encode_params>.size))
    return params
}

func csae_search_default_params() -> csae_search_params {
    var params = csae_search_params()
    _ = csae_search_params_init(&params, UInt32(MemoryLayout<csae_search_params>.size))
    return params
}

func csae_row_source_defaults() -> csae_row_source {
    var source = csae_row_source()
    _ = csae_row_source_init(&source, UInt32(MemoryLayout<csae_row_source>.size))
    return source
}
