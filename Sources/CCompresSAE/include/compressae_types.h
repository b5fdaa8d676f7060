/* Types shared by the C ABI of compressae. This block is copied verbatim into
 * the generated public header include/compressae.h; the function declarations
 * that follow it there are generated from the Swift `@c` exports. */
#ifndef COMPRESSAE_TYPES_H
#define COMPRESSAE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version of this header. Bumped on every incompatible change;
 *  compare with csae_abi_version() at load time. */
#define CSAE_ABI_VERSION 7

/** Version of the library, as csae_version() returns it. The one place it
 *  is written: the Python package's version is read from here when it is
 *  built. */
#define CSAE_VERSION "0.1.0"

/* Layout of the public structs. Below each struct, one CSAE_ASSERT_SIZE line
 * and one CSAE_ASSERT_OFFSET line per field state its layout, so that a
 * change of it (a field inserted, resized or moved) fails to compile rather
 * than break callers built against an older header unnoticed; the numbers
 * are the ABI. scripts/generate-header refuses a struct or field without its
 * line, and scripts/generate-bindings checks the Python ctypes mirror against
 * them. They are the layout of 64-bit platforms, the only ones the library
 * is built for. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define CSAE_STATIC_ASSERT(condition, message) static_assert(condition, message)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define CSAE_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#else /* before C11 / C++11: an array of negative size does not compile */
#define CSAE_STATIC_ASSERT(condition, message) extern char csae_layout_check[(condition) ? 1 : -1]
#endif
#define CSAE_ASSERT_SIZE(type, size) CSAE_STATIC_ASSERT(sizeof(type) == (size), "sizeof(" #type ")")
#define CSAE_ASSERT_OFFSET(type, field, offset) \
    CSAE_STATIC_ASSERT(offsetof(type, field) == (offset), "offsetof(" #type ", " #field ")")

/** Status codes returned by every csae_ function that can fail.
 *  On any non-zero status, csae_last_error() describes the failure. */
enum csae_status {
    CSAE_OK = 0,
    CSAE_ERR_INVALID_ARGUMENT = 1, /**< a NULL pointer, bad size, bad value, NaN/Inf... */
    CSAE_ERR_INVALID_HANDLE = 2,   /**< a handle that was freed or never created */
    CSAE_ERR_IO = 3,               /**< a file could not be opened, read, written or renamed */
    CSAE_ERR_FORMAT = 4,           /**< a file is not a valid compressae / safetensors file */
    CSAE_ERR_CANCELLED = 5,        /**< the progress callback asked to stop */
    CSAE_ERR_OUT_OF_MEMORY = 6,    /**< a buffer sized by the arguments or a file could not be allocated */
    CSAE_ERR_BUSY = 7              /**< the model is being trained (by csae_model_train) */
};

/* Threads.
 * Worker threads: every call that runs on worker threads takes a num_threads
 * (a field of its params struct, or an argument): >= 1 for that many, 0 for
 * the process-wide default, csae_get_num_threads() (set by
 * csae_set_num_threads). That is train, encode, refit, decode,
 * preactivations, loss_and_gradients, index add_dense and the two searches;
 * the other calls run on the calling thread alone.
 *
 * Concurrency: every function may be called from any thread, on any handle,
 * at any time: a call either completes or returns a status, and never
 * touches freed or foreign memory. What runs concurrently on one handle:
 *  - a model: encode, decode, refit, preactivations, loss_and_gradients,
 *    copy_weights, get_shape, save and copy_history run side by side;
 *    csae_model_train runs alone (a second one returns CSAE_ERR_BUSY), and
 *    each of its steps holds the weights exclusively, so other calls wait for
 *    the step in progress (not for the whole training) and see the weights as
 *    they are between steps; csae_model_set_k returns CSAE_ERR_BUSY while it
 *    runs (including from its progress callback).
 *  - an index: adds and searches from several threads wait for each other as
 *    needed; an index whose model was trained after its items were added
 *    refuses to add, search and save (CSAE_ERR_INVALID_ARGUMENT).
 *  - csae_model_free / csae_index_free while other threads use the handle:
 *    calls already running finish on the object, later calls with the handle
 *    return CSAE_ERR_INVALID_HANDLE.
 * Each call reads the values it depends on (k, shapes, the item count) once,
 * at its start, and uses them throughout; output buffers come with their
 * capacity, checked against the values read (never a write past it). */

/* Params structs (csae_train_params, csae_encode_params, csae_search_params).
 * Get one from csae_train_default_params(), csae_encode_default_params() or
 * csae_search_default_params() (static inline helpers at the end of this
 * header, over the exported csae_*_params_init) and change fields; a NULL
 * params pointer means the defaults. Each struct begins with
 *   uint32_t struct_size;  sizeof(the struct) in the caller's header
 *   int32_t num_threads;   worker threads, 0 = csae_get_num_threads()
 * so that fields can be appended without breaking programs built against
 * an older header: the library reads and writes only the first struct_size
 * bytes; a field beyond them takes the value that keeps the behaviour of
 * the caller's header (its default, or off for a term added later, such
 * as dead_latent_aux_weight). struct_size must
 * be a multiple of 8, at least the size of the struct in ABI version 6 (the
 * first with this field) and at most the size this library knows; anything
 * else is CSAE_ERR_INVALID_ARGUMENT (a program built against a newer header
 * than the library: upgrade the library). The structs have no padding
 * (8-byte fields, 4-byte fields in pairs): a field appended later never
 * lands in bytes an older caller left unset. csae_row_source (the training
 * source) follows the same rule: csae_row_source_defaults(), over the
 * exported csae_row_source_init. */

/** Retrieval modes of a csae_index. */
enum csae_index_mode {
    CSAE_INDEX_SPARSE = 0,        /**< cosine between sparse codes, through an inverted index */
    CSAE_INDEX_RECONSTRUCTED = 1  /**< cosine between decoded vectors, O(k) per item */
};

/** Storage of a csae_index's codes. */
enum csae_index_storage {
    CSAE_STORAGE_STANDARD = 0,    /**< float32 values (8 bytes per nonzero reconstructed, 6 sparse) */
    CSAE_STORAGE_COMPACT = 1,     /**< half-precision values (and uint16 indices in reconstructed mode): 4 bytes */
    CSAE_STORAGE_PACKED8 = 2,     /**< 8-bit value levels + a float32 scale per item (the packed codes' quantiser):
                                       3 bytes per nonzero (uint16 index or item id + level) + 4 per item */
    CSAE_STORAGE_PACKED4 = 3      /**< 4-bit value levels: 2.5 bytes per nonzero + 4 per item */
};

/** Index codings of packed codes (csae_codes_pack). */
enum csae_index_coding {
    CSAE_CODING_AUTO = 0,         /**< whichever is smaller for h and k (fixed width on a tie) */
    CSAE_CODING_FIXED_WIDTH = 1,  /**< ceil(log2 h) bits per index, ascending */
    CSAE_CODING_ELIAS_FANO = 2    /**< Elias-Fano: floor(log2(h / k)) low bits each + a unary high part */
};

/** Encoder initialisation of csae_model_create. */
enum csae_init {
    CSAE_INIT_REFERENCE = 0,      /**< kaiming-uniform encoder, as the PyTorch reference */
    CSAE_INIT_TIED = 1            /**< encoder = decoder transposed: no latent starts dead */
};

/** Training recipes of csae_train_params_init. */
enum csae_train_recipe {
    CSAE_RECIPE_DEFAULT = 0,      /**< the recipe chosen by measurement (docs/quality.md) */
    CSAE_RECIPE_REFERENCE = 1     /**< the PyTorch reference's recipe */
};

/** The per-step or per-epoch series of csae_model_copy_history. */
enum csae_history {
    CSAE_HISTORY_TRAINING_LOSS = 0,  /**< training loss of every step of the last csae_model_train call */
    CSAE_HISTORY_VALIDATION_LOSS = 1,/**< validation loss at each validation (see validation_steps; empty when validation_fraction = 0) */
    CSAE_HISTORY_DEAD_LATENTS = 2    /**< per step, the fraction of latents in no row's k-code during the last
                                          dead_latent_window training rows (0 until a full window was seen) */
};

/** Learning-rate shape after the warm-up (csae_train_params.learning_rate_decay). */
enum csae_learning_rate_decay {
    CSAE_LR_CONSTANT = 0,         /**< the same rate at every step */
    CSAE_LR_COSINE = 1,           /**< half a cosine down to learning_rate * min_learning_rate_ratio */
    CSAE_LR_LINEAR = 2,           /**< a straight line down to learning_rate * min_learning_rate_ratio */
    CSAE_LR_PLATEAU = 3           /**< constant until the validation loss plateaus (patience), then cut by
                                       plateau_factor, at most plateau_reductions times; the next plateau stops */
};

/** Opaque handle to an index of sparse codes. Create with csae_index_create
 *  or csae_index_load, release with csae_index_free. */
typedef struct csae_index csae_index;

/** Opaque handle to a model. Create with csae_model_create / _load /
 *  _create_from_weights, release with csae_model_free. */
typedef struct csae_model csae_model;

/** Progress callback of csae_model_train, called after every optimiser step.
 *  @param user_data  the pointer given in csae_train_params.user_data
 *  @param step       steps done so far (1-based)
 *  @param total      total steps of this training call
 *  @param loss       training loss of that step (before its update)
 *  @return 0 to continue, non-zero to cancel (train returns CSAE_ERR_CANCELLED,
 *          the steps done so far are kept). */
typedef int32_t (*csae_progress_fn)(void *user_data, int64_t step, int64_t total, float loss);

/** Training settings. Start from csae_train_default_params() (the measured
 *  recipe) or csae_train_reference_params() (the PyTorch reference's recipe). */
typedef struct csae_train_params {
    uint32_t struct_size;     /**< sizeof(csae_train_params) of the caller's header (see Params structs) */
    int32_t num_threads;      /**< worker threads; 0 = csae_get_num_threads() (default 0) */
    int64_t batch_size;       /**< rows per optimiser step (default 4096) */
    int64_t epochs;           /**< most passes over the data; early stopping may end sooner (default 400) */
    double learning_rate;     /**< Adam step size (default 1e-2) */
    double beta1;             /**< Adam first-moment decay (default 0.9) */
    double beta2;             /**< Adam second-moment decay (default 0.999) */
    double eps;               /**< Adam epsilon (default 1e-8) */
    uint64_t seed;            /**< seed of the validation split and the per-epoch shuffle (default 0) */
    int32_t shuffle;          /**< 1: shuffle rows every epoch; 0: fixed order (default 1) */
    int32_t learning_rate_decay;/**< a csae_learning_rate_decay value (default CSAE_LR_PLATEAU) */
    csae_progress_fn progress;/**< optional progress callback (default NULL) */
    void *user_data;          /**< passed to progress unchanged */
    int64_t dead_latent_window;/**< rows after which a latent absent from every k-code counts
                                    as dead (CSAE_HISTORY_DEAD_LATENTS); 0 = one epoch (default 0) */
    int64_t warmup_steps;     /**< steps of linear learning-rate warm-up (default 50) */
    double min_learning_rate_ratio;/**< final rate of a decay, as a fraction of learning_rate,
                                        in [0, 1] (default 0) */
    double validation_fraction;/**< fraction of rows held out to measure the validation loss after
                                    every epoch or validation_steps steps (CSAE_HISTORY_VALIDATION_LOSS), in [0, 1);
                                    inputs under 20 rows are not split (default 0.05) */
    int64_t patience;         /**< validations without a relative improvement of tolerance in the validation
                                    loss that make a plateau: it stops training (CSAE_LR_PLATEAU: after
                                    plateau_reductions cuts); 0 = never (default 2) */
    double tolerance;         /**< relative improvement that counts (default 5e-3) */
    double plateau_factor;    /**< CSAE_LR_PLATEAU: factor of each cut, in (0, 1) (default 0.2) */
    int64_t plateau_reductions;/**< CSAE_LR_PLATEAU: cuts before a plateau stops training (default 2) */
    double sparse_similarity_weight;        /**< weight of the term that trains code cosines to rank
                                                 like input cosines (sparse mode); 0 = off (default 0.03) */
    double similarity_temperature;          /**< softmax temperature of that term, > 0 (default 0.05) */
    int64_t similarity_rows;  /**< rows of each batch it compares pairwise, 2..16384 (default 1024) */
    int64_t validation_steps; /**< fewest steps between validations: the loss is measured after
                                   the first epoch that ends this many steps after the last
                                   measurement; patience counts measurements; 0 = after every
                                   epoch (default 25) */
    double dead_latent_aux_weight;/**< weight of the auxiliary term that trains each row's top
                                       dead_latent_aux_k dead latents (in no k-code during the last
                                       dead_latent_window rows) to reconstruct what its k-code misses;
                                       0 = off (default 0.125) */
    int64_t dead_latent_aux_k;/**< dead latents per row in that term; 0 = max(4, k / 4) (default 0) */
} csae_train_params;
CSAE_ASSERT_SIZE(csae_train_params, 200);
CSAE_ASSERT_OFFSET(csae_train_params, struct_size, 0);
CSAE_ASSERT_OFFSET(csae_train_params, num_threads, 4);
CSAE_ASSERT_OFFSET(csae_train_params, batch_size, 8);
CSAE_ASSERT_OFFSET(csae_train_params, epochs, 16);
CSAE_ASSERT_OFFSET(csae_train_params, learning_rate, 24);
CSAE_ASSERT_OFFSET(csae_train_params, beta1, 32);
CSAE_ASSERT_OFFSET(csae_train_params, beta2, 40);
CSAE_ASSERT_OFFSET(csae_train_params, eps, 48);
CSAE_ASSERT_OFFSET(csae_train_params, seed, 56);
CSAE_ASSERT_OFFSET(csae_train_params, shuffle, 64);
CSAE_ASSERT_OFFSET(csae_train_params, learning_rate_decay, 68);
CSAE_ASSERT_OFFSET(csae_train_params, progress, 72);
CSAE_ASSERT_OFFSET(csae_train_params, user_data, 80);
CSAE_ASSERT_OFFSET(csae_train_params, dead_latent_window, 88);
CSAE_ASSERT_OFFSET(csae_train_params, warmup_steps, 96);
CSAE_ASSERT_OFFSET(csae_train_params, min_learning_rate_ratio, 104);
CSAE_ASSERT_OFFSET(csae_train_params, validation_fraction, 112);
CSAE_ASSERT_OFFSET(csae_train_params, patience, 120);
CSAE_ASSERT_OFFSET(csae_train_params, tolerance, 128);
CSAE_ASSERT_OFFSET(csae_train_params, plateau_factor, 136);
CSAE_ASSERT_OFFSET(csae_train_params, plateau_reductions, 144);
CSAE_ASSERT_OFFSET(csae_train_params, sparse_similarity_weight, 152);
CSAE_ASSERT_OFFSET(csae_train_params, similarity_temperature, 160);
CSAE_ASSERT_OFFSET(csae_train_params, similarity_rows, 168);
CSAE_ASSERT_OFFSET(csae_train_params, validation_steps, 176);
CSAE_ASSERT_OFFSET(csae_train_params, dead_latent_aux_weight, 184);
CSAE_ASSERT_OFFSET(csae_train_params, dead_latent_aux_k, 192);

/** Settings of csae_model_encode and csae_model_refit. Start from
 *  csae_encode_default_params(). */
typedef struct csae_encode_params {
    uint32_t struct_size;     /**< sizeof(csae_encode_params) of the caller's header (see Params structs) */
    int32_t num_threads;      /**< worker threads; 0 = csae_get_num_threads() (default 0) */
    int64_t k;                /**< nonzeros per code, 1 <= k <= h, or 0 for the model's k, read once at the
                                   start of the call and reported back (default 0) */
} csae_encode_params;
CSAE_ASSERT_SIZE(csae_encode_params, 16);
CSAE_ASSERT_OFFSET(csae_encode_params, struct_size, 0);
CSAE_ASSERT_OFFSET(csae_encode_params, num_threads, 4);
CSAE_ASSERT_OFFSET(csae_encode_params, k, 8);

/** Settings of csae_index_search_dense and csae_index_search_codes. Start
 *  from csae_search_default_params(). */
typedef struct csae_search_params {
    uint32_t struct_size;     /**< sizeof(csae_search_params) of the caller's header (see Params structs) */
    int32_t num_threads;      /**< worker threads; 0 = csae_get_num_threads() (default 0) */
    int64_t n;                /**< results per query, >= 1 (default 100); the results of a query are
                                   min(n, item count) */
    int64_t query_k;          /**< dense queries in sparse mode: nonzeros of the query codes, 1 <= query_k <= h,
                                   or 0 for min(h, 4k); ignored otherwise (default 0) */
    int64_t candidates;       /**< reconstructed mode: 0 scores every item (exact); c >= 1 scores exactly only
                                   the max(c, n) best candidates of a posting-list stage (faster, may miss
                                   items; built at the first such search, about doubling the index's bytes);
                                   ignored in sparse mode (default 0) */
} csae_search_params;
CSAE_ASSERT_SIZE(csae_search_params, 32);
CSAE_ASSERT_OFFSET(csae_search_params, struct_size, 0);
CSAE_ASSERT_OFFSET(csae_search_params, num_threads, 4);
CSAE_ASSERT_OFFSET(csae_search_params, n, 8);
CSAE_ASSERT_OFFSET(csae_search_params, query_k, 16);
CSAE_ASSERT_OFFSET(csae_search_params, candidates, 24);

/** Training data read through callbacks (csae_model_train_source): data
 *  larger than memory, or in a form the caller converts a batch at a time.
 *  Memory is bounded by the batch, not the data. */
enum csae_source_kind {
    CSAE_SOURCE_ROWS = 0,         /**< rows read by position (read_rows): a file, a memory map */
    CSAE_SOURCE_STREAM = 1        /**< rows read in order, pass after pass (read_stream): an iterator */
};

/** A run of contiguous rows: start ..< start + count. */
typedef struct csae_row_range {
    int64_t start;
    int64_t count;
} csae_row_range;
CSAE_ASSERT_SIZE(csae_row_range, 16);
CSAE_ASSERT_OFFSET(csae_row_range, start, 0);
CSAE_ASSERT_OFFSET(csae_row_range, count, 8);

/** CSAE_SOURCE_ROWS: copies the rows of ranges[0..n_ranges), one range after
 *  the other, into out (d floats per row, row-major; at most one batch). Called
 *  once per training step and per batch of the validation pass, from the
 *  thread that called csae_model_train_source, with no lock of the model held.
 *  @return 0, or non-zero to stop training (see csae_model_train_source). */
typedef int32_t (*csae_read_rows_fn)(void *user_data, const csae_row_range *ranges, int64_t n_ranges,
                                     float *out);

/** CSAE_SOURCE_STREAM: copies up to count rows into out (d floats per row),
 *  starting at row position of the current pass: 0 starts a new pass (one per
 *  epoch), any other value is where the previous call ended. Stores the rows
 *  copied in *rows_read: 1..count, or 0 when the pass is over.
 *  @return 0, or non-zero to stop training (see csae_model_train_source). */
typedef int32_t (*csae_read_stream_fn)(void *user_data, int64_t position, int64_t count, float *out,
                                       int64_t *rows_read);

/** Where csae_model_train_source reads its rows. Start from
 *  csae_row_source_defaults() (a static inline helper over the exported
 *  csae_row_source_init, like the params structs' and with the same
 *  struct_size rule), set kind and its callback. */
typedef struct csae_row_source {
    uint32_t struct_size;     /**< sizeof(csae_row_source) of the caller's header (see Params structs) */
    int32_t kind;             /**< a csae_source_kind value (default CSAE_SOURCE_ROWS) */
    int64_t rows;             /**< CSAE_SOURCE_ROWS: number of rows, >= 1 */
    int64_t block_rows;       /**< CSAE_SOURCE_ROWS: rows the shuffle keeps together, >= 1: the data is cut
                                   into blocks of block_rows contiguous rows, whole blocks are held out and
                                   shuffled, and rows are shuffled within each batch; 1 shuffles rows as
                                   csae_model_train does, with the same results (default 1) */
    int64_t max_validation_rows;/**< CSAE_SOURCE_STREAM: most held-out rows kept in memory, >= 0 (default 16384) */
    csae_read_rows_fn read_rows;    /**< CSAE_SOURCE_ROWS: the reader */
    csae_read_stream_fn read_stream;/**< CSAE_SOURCE_STREAM: the reader */
    void *user_data;          /**< passed to the callback unchanged */
} csae_row_source;
CSAE_ASSERT_SIZE(csae_row_source, 56);
CSAE_ASSERT_OFFSET(csae_row_source, struct_size, 0);
CSAE_ASSERT_OFFSET(csae_row_source, kind, 4);
CSAE_ASSERT_OFFSET(csae_row_source, rows, 8);
CSAE_ASSERT_OFFSET(csae_row_source, block_rows, 16);
CSAE_ASSERT_OFFSET(csae_row_source, max_validation_rows, 24);
CSAE_ASSERT_OFFSET(csae_row_source, read_rows, 32);
CSAE_ASSERT_OFFSET(csae_row_source, read_stream, 40);
CSAE_ASSERT_OFFSET(csae_row_source, user_data, 48);

/** The seven loss values of one batch, as the reference reports them. */
typedef struct csae_losses {
    float l2;        /**< mean squared error of the k-sparse reconstruction */
    float l2_4k;     /**< same for the 4k-sparse reconstruction */
    float l1;        /**< mean over rows of sum |code| (k-sparse) */
    float l0;        /**< mean number of nonzeros per code (k-sparse) */
    float cosine;    /**< mean of 1 - cos(x, recon_k) */
    float cosine_4k; /**< mean of 1 - cos(x, recon_4k) */
    float loss;      /**< cosine + cosine_4k / 8: the training objective */
} csae_losses;
CSAE_ASSERT_SIZE(csae_losses, 28);
CSAE_ASSERT_OFFSET(csae_losses, l2, 0);
CSAE_ASSERT_OFFSET(csae_losses, l2_4k, 4);
CSAE_ASSERT_OFFSET(csae_losses, l1, 8);
CSAE_ASSERT_OFFSET(csae_losses, l0, 12);
CSAE_ASSERT_OFFSET(csae_losses, cosine, 16);
CSAE_ASSERT_OFFSET(csae_losses, cosine_4k, 20);
CSAE_ASSERT_OFFSET(csae_losses, loss, 24);

#ifdef __cplusplus
}
#endif

#endif /* COMPRESSAE_TYPES_H */
