"""The C ABI of libCompresSAE as ctypes data: generated from include/compressae.h
by scripts/generate-bindings; do not edit (scripts/test checks it is current).

python/compressae/_ffi.py binds the library from FUNCTIONS; the rest mirrors
the header's constants, enums, callback types and structs."""

from ctypes import (
    CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
    c_size_t, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p,
)

# ---- #define constants
CSAE_ABI_VERSION = 7

# ---- enum csae_status
CSAE_OK = 0
CSAE_ERR_INVALID_ARGUMENT = 1
CSAE_ERR_INVALID_HANDLE = 2
CSAE_ERR_IO = 3
CSAE_ERR_FORMAT = 4
CSAE_ERR_CANCELLED = 5
CSAE_ERR_OUT_OF_MEMORY = 6
CSAE_ERR_BUSY = 7
CSAE_STATUS_NAMES = {
    0: 'CSAE_OK',
    1: 'CSAE_ERR_INVALID_ARGUMENT',
    2: 'CSAE_ERR_INVALID_HANDLE',
    3: 'CSAE_ERR_IO',
    4: 'CSAE_ERR_FORMAT',
    5: 'CSAE_ERR_CANCELLED',
    6: 'CSAE_ERR_OUT_OF_MEMORY',
    7: 'CSAE_ERR_BUSY',
}

# ---- enum csae_index_mode
CSAE_INDEX_SPARSE = 0
CSAE_INDEX_RECONSTRUCTED = 1
CSAE_INDEX_MODE_NAMES = {
    0: 'CSAE_INDEX_SPARSE',
    1: 'CSAE_INDEX_RECONSTRUCTED',
}

# ---- enum csae_index_storage
CSAE_STORAGE_STANDARD = 0
CSAE_STORAGE_COMPACT = 1
CSAE_STORAGE_PACKED8 = 2
CSAE_STORAGE_PACKED4 = 3
CSAE_INDEX_STORAGE_NAMES = {
    0: 'CSAE_STORAGE_STANDARD',
    1: 'CSAE_STORAGE_COMPACT',
    2: 'CSAE_STORAGE_PACKED8',
    3: 'CSAE_STORAGE_PACKED4',
}

# ---- enum csae_index_coding
CSAE_CODING_AUTO = 0
CSAE_CODING_FIXED_WIDTH = 1
CSAE_CODING_ELIAS_FANO = 2
CSAE_INDEX_CODING_NAMES = {
    0: 'CSAE_CODING_AUTO',
    1: 'CSAE_CODING_FIXED_WIDTH',
    2: 'CSAE_CODING_ELIAS_FANO',
}

# ---- enum csae_init
CSAE_INIT_REFERENCE = 0
CSAE_INIT_TIED = 1
CSAE_INIT_NAMES = {
    0: 'CSAE_INIT_REFERENCE',
    1: 'CSAE_INIT_TIED',
}

# ---- enum csae_train_recipe
CSAE_RECIPE_DEFAULT = 0
CSAE_RECIPE_REFERENCE = 1
CSAE_TRAIN_RECIPE_NAMES = {
    0: 'CSAE_RECIPE_DEFAULT',
    1: 'CSAE_RECIPE_REFERENCE',
}

# ---- enum csae_history
CSAE_HISTORY_TRAINING_LOSS = 0
CSAE_HISTORY_VALIDATION_LOSS = 1
CSAE_HISTORY_DEAD_LATENTS = 2
CSAE_HISTORY_NAMES = {
    0: 'CSAE_HISTORY_TRAINING_LOSS',
    1: 'CSAE_HISTORY_VALIDATION_LOSS',
    2: 'CSAE_HISTORY_DEAD_LATENTS',
}

# ---- enum csae_learning_rate_decay
CSAE_LR_CONSTANT = 0
CSAE_LR_COSINE = 1
CSAE_LR_LINEAR = 2
CSAE_LR_PLATEAU = 3
CSAE_LEARNING_RATE_DECAY_NAMES = {
    0: 'CSAE_LR_CONSTANT',
    1: 'CSAE_LR_COSINE',
    2: 'CSAE_LR_LINEAR',
    3: 'CSAE_LR_PLATEAU',
}

# ---- enum csae_source_kind
CSAE_SOURCE_ROWS = 0
CSAE_SOURCE_STREAM = 1
CSAE_SOURCE_KIND_NAMES = {
    0: 'CSAE_SOURCE_ROWS',
    1: 'CSAE_SOURCE_STREAM',
}

# ---- opaque handles: ctypes sees them as void pointers
OPAQUE_TYPES = ('csae_index', 'csae_model', )

#: ``csae_progress_fn``: (user_data, step, total, loss)
csae_progress_fn = CFUNCTYPE(c_int32, c_void_p, c_int64, c_int64, c_float)


class csae_train_params(Structure):
    """``csae_train_params`` of include/compressae.h."""

    _fields_ = [
        ('struct_size', c_uint32),
        ('num_threads', c_int32),
        ('batch_size', c_int64),
        ('epochs', c_int64),
        ('learning_rate', c_double),
        ('beta1', c_double),
        ('beta2', c_double),
        ('eps', c_double),
        ('seed', c_uint64),
        ('shuffle', c_int32),
        ('learning_rate_decay', c_int32),
        ('progress', csae_progress_fn),
        ('user_data', c_void_p),
        ('dead_latent_window', c_int64),
        ('warmup_steps', c_int64),
        ('min_learning_rate_ratio', c_double),
        ('validation_fraction', c_double),
        ('patience', c_int64),
        ('tolerance', c_double),
        ('plateau_factor', c_double),
        ('plateau_reductions', c_int64),
        ('sparse_similarity_weight', c_double),
        ('similarity_temperature', c_double),
        ('similarity_rows', c_int64),
        ('validation_steps', c_int64),
        ('dead_latent_aux_weight', c_double),
        ('dead_latent_aux_k', c_int64),
    ]


class csae_encode_params(Structure):
    """``csae_encode_params`` of include/compressae.h."""

    _fields_ = [
        ('struct_size', c_uint32),
        ('num_threads', c_int32),
        ('k', c_int64),
    ]


class csae_search_params(Structure):
    """``csae_search_params`` of include/compressae.h."""

    _fields_ = [
        ('struct_size', c_uint32),
        ('num_threads', c_int32),
        ('n', c_int64),
        ('query_k', c_int64),
        ('candidates', c_int64),
    ]


class csae_row_range(Structure):
    """``csae_row_range`` of include/compressae.h."""

    _fields_ = [
        ('start', c_int64),
        ('count', c_int64),
    ]

#: ``csae_read_rows_fn``: (user_data, ranges, n_ranges, out)
csae_read_rows_fn = CFUNCTYPE(c_int32, c_void_p, POINTER(csae_row_range), c_int64, POINTER(c_float))

#: ``csae_read_stream_fn``: (user_data, position, count, out, rows_read)
csae_read_stream_fn = CFUNCTYPE(c_int32, c_void_p, c_int64, c_int64, POINTER(c_float), POINTER(c_int64))


class csae_row_source(Structure):
    """``csae_row_source`` of include/compressae.h."""

    _fields_ = [
        ('struct_size', c_uint32),
        ('kind', c_int32),
        ('rows', c_int64),
        ('block_rows', c_int64),
        ('max_validation_rows', c_int64),
        ('read_rows', csae_read_rows_fn),
        ('read_stream', csae_read_stream_fn),
        ('user_data', c_void_p),
    ]


class csae_losses(Structure):
    """``csae_losses`` of include/compressae.h."""

    _fields_ = [
        ('l2', c_float),
        ('l2_4k', c_float),
        ('l1', c_float),
        ('l0', c_float),
        ('cosine', c_float),
        ('cosine_4k', c_float),
        ('loss', c_float),
    ]


#: name -> (restype, [(parameter name, ctype), ...]), in header order.
FUNCTIONS = {
    'csae_abi_version': (c_int32, []),
    'csae_version': (c_char_p, []),
    'csae_last_error': (c_char_p, []),
    'csae_blas_name': (c_char_p, []),
    'csae_vector_isa': (c_char_p, []),
    'csae_set_num_threads': (c_int32, [
        ('num_threads', c_int32),
    ]),
    'csae_get_num_threads': (c_int32, []),
    'csae_model_create': (c_int32, [
        ('input_dim', c_int64),
        ('latent_dim', c_int64),
        ('k', c_int64),
        ('seed', c_uint64),
        ('initialization', c_int32),
        ('out', POINTER(c_void_p)),
    ]),
    'csae_model_create_from_weights': (c_int32, [
        ('input_dim', c_int64),
        ('latent_dim', c_int64),
        ('k', c_int64),
        ('encoder_w', POINTER(c_float)),
        ('encoder_b', POINTER(c_float)),
        ('decoder_w', POINTER(c_float)),
        ('out', POINTER(c_void_p)),
    ]),
    'csae_model_free': (None, [
        ('model', c_void_p),
    ]),
    'csae_model_load': (c_int32, [
        ('path', c_char_p),
        ('k', c_int64),
        ('out', POINTER(c_void_p)),
    ]),
    'csae_model_save': (c_int32, [
        ('model', c_void_p),
        ('path', c_char_p),
    ]),
    'csae_model_get_shape': (c_int32, [
        ('model', c_void_p),
        ('input_dim', POINTER(c_int64)),
        ('latent_dim', POINTER(c_int64)),
        ('k', POINTER(c_int64)),
    ]),
    'csae_model_set_k': (c_int32, [
        ('model', c_void_p),
        ('k', c_int64),
    ]),
    'csae_model_copy_weights': (c_int32, [
        ('model', c_void_p),
        ('encoder_w', POINTER(c_float)),
        ('encoder_w_len', c_int64),
        ('encoder_b', POINTER(c_float)),
        ('encoder_b_len', c_int64),
        ('decoder_w', POINTER(c_float)),
        ('decoder_w_len', c_int64),
    ]),
    'csae_train_params_init': (c_int32, [
        ('params', POINTER(csae_train_params)),
        ('struct_size', c_uint32),
        ('recipe', c_int32),
    ]),
    'csae_model_train': (c_int32, [
        ('model', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('params', POINTER(csae_train_params)),
    ]),
    'csae_model_loss_and_gradients': (c_int32, [
        ('model', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('num_threads', c_int32),
        ('losses', POINTER(csae_losses)),
        ('grad_encoder_w', POINTER(c_float)),
        ('grad_encoder_b', POINTER(c_float)),
        ('grad_decoder_w', POINTER(c_float)),
    ]),
    'csae_model_copy_history': (c_int32, [
        ('model', c_void_p),
        ('which', c_int32),
        ('out', POINTER(c_float)),
        ('capacity', c_int64),
        ('length', POINTER(c_int64)),
    ]),
    'csae_encode_params_init': (c_int32, [
        ('params', POINTER(csae_encode_params)),
        ('struct_size', c_uint32),
    ]),
    'csae_model_encode': (c_int32, [
        ('model', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('params', POINTER(csae_encode_params)),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('capacity', c_int64),
        ('k_used', POINTER(c_int64)),
    ]),
    'csae_model_refit': (c_int32, [
        ('model', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('params', POINTER(csae_encode_params)),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('capacity', c_int64),
        ('k_used', POINTER(c_int64)),
    ]),
    'csae_model_decode': (c_int32, [
        ('model', c_void_p),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('n', c_int64),
        ('k', c_int64),
        ('num_threads', c_int32),
        ('out', POINTER(c_float)),
    ]),
    'csae_model_preactivations': (c_int32, [
        ('model', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('num_threads', c_int32),
        ('out', POINTER(c_float)),
    ]),
    'csae_search_params_init': (c_int32, [
        ('params', POINTER(csae_search_params)),
        ('struct_size', c_uint32),
    ]),
    'csae_index_create': (c_int32, [
        ('model', c_void_p),
        ('mode', c_int32),
        ('storage', c_int32),
        ('out', POINTER(c_void_p)),
    ]),
    'csae_index_free': (None, [
        ('index', c_void_p),
    ]),
    'csae_index_add_codes': (c_int32, [
        ('index', c_void_p),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('n', c_int64),
        ('k', c_int64),
    ]),
    'csae_index_add_dense': (c_int32, [
        ('index', c_void_p),
        ('x', POINTER(c_float)),
        ('n', c_int64),
        ('d', c_int64),
        ('num_threads', c_int32),
    ]),
    'csae_index_search_dense': (c_int32, [
        ('index', c_void_p),
        ('queries', POINTER(c_float)),
        ('nq', c_int64),
        ('d', c_int64),
        ('params', POINTER(csae_search_params)),
        ('scores', POINTER(c_float)),
        ('ids', POINTER(c_int64)),
        ('capacity', c_int64),
        ('n_results', POINTER(c_int64)),
    ]),
    'csae_index_search_codes': (c_int32, [
        ('index', c_void_p),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('nq', c_int64),
        ('k', c_int64),
        ('params', POINTER(csae_search_params)),
        ('scores', POINTER(c_float)),
        ('ids', POINTER(c_int64)),
        ('capacity', c_int64),
        ('n_results', POINTER(c_int64)),
    ]),
    'csae_index_get_info': (c_int32, [
        ('index', c_void_p),
        ('count', POINTER(c_int64)),
        ('k', POINTER(c_int64)),
        ('nbytes', POINTER(c_int64)),
        ('mode', POINTER(c_int32)),
        ('storage', POINTER(c_int32)),
    ]),
    'csae_index_save': (c_int32, [
        ('index', c_void_p),
        ('path', c_char_p),
    ]),
    'csae_index_load': (c_int32, [
        ('path', c_char_p),
        ('model', c_void_p),
        ('out', POINTER(c_void_p)),
    ]),
    'csae_packed_size': (c_int32, [
        ('h', c_int64),
        ('k', c_int64),
        ('bits', c_int32),
        ('coding', c_int32),
        ('n', c_int64),
        ('row_bytes', POINTER(c_int64)),
        ('total_bytes', POINTER(c_int64)),
        ('coding_used', POINTER(c_int32)),
    ]),
    'csae_codes_pack': (c_int32, [
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('n', c_int64),
        ('k', c_int64),
        ('h', c_int64),
        ('bits', c_int32),
        ('coding', c_int32),
        ('out', POINTER(c_uint8)),
        ('capacity', c_int64),
        ('written', POINTER(c_int64)),
    ]),
    'csae_packed_info': (c_int32, [
        ('data', POINTER(c_uint8)),
        ('size', c_int64),
        ('n', POINTER(c_int64)),
        ('k', POINTER(c_int64)),
        ('h', POINTER(c_int64)),
        ('bits', POINTER(c_int32)),
        ('coding', POINTER(c_int32)),
    ]),
    'csae_codes_unpack': (c_int32, [
        ('data', POINTER(c_uint8)),
        ('size', c_int64),
        ('indices', POINTER(c_int32)),
        ('values', POINTER(c_float)),
        ('capacity', c_int64),
    ]),
    'csae_row_source_init': (c_int32, [
        ('source', POINTER(csae_row_source)),
        ('struct_size', c_uint32),
    ]),
    'csae_model_train_source': (c_int32, [
        ('model', c_void_p),
        ('source', POINTER(csae_row_source)),
        ('params', POINTER(csae_train_params)),
    ]),
}
