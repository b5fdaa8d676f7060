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
#define CSAE_ABI_VERSION 3

/** Status codes returned by every csae_ function that can fail.
 *  On any non-zero status, csae_last_error() describes the failure. */
enum csae_status {
    CSAE_OK = 0,
    CSAE_ERR_INVALID_ARGUMENT = 1, /**< a NULL pointer, bad size, bad value, NaN/Inf... */
    CSAE_ERR_INVALID_HANDLE = 2,   /**< a handle that was freed or never created */
    CSAE_ERR_IO = 3,               /**< a file could not be opened, read, written or renamed */
    CSAE_ERR_FORMAT = 4,           /**< a file is not a valid compressae / safetensors file */
    CSAE_ERR_CANCELLED = 5,        /**< the progress callback asked to stop */
    CSAE_ERR_OUT_OF_MEMORY = 6,    /**< an allocation failed */
    CSAE_ERR_BUSY = 7              /**< the model is being trained by another call */
};

/** Retrieval modes of a csae_index. */
enum csae_index_mode {
    CSAE_INDEX_SPARSE = 0,        /**< cosine between sparse codes, through an inverted index */
    CSAE_INDEX_RECONSTRUCTED = 1  /**< cosine between decoded vectors, O(k) per item */
};

/** Storage of a csae_index's codes. */
enum csae_index_storage {
    CSAE_STORAGE_STANDARD = 0,    /**< int32 index + float32 value per nonzero */
    CSAE_STORAGE_COMPACT = 1      /**< half-precision values (and uint16 indices in reconstructed mode) */
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

/** Training settings. Always start from csae_train_default_params(). */
typedef struct csae_train_params {
    int64_t batch_size;       /**< rows per optimiser step (default 4096) */
    int64_t epochs;           /**< passes over the data (default 1) */
    double learning_rate;     /**< Adam step size (default 1e-3) */
    double beta1;             /**< Adam first-moment decay (default 0.9) */
    double beta2;             /**< Adam second-moment decay (default 0.999) */
    double eps;               /**< Adam epsilon (default 1e-8) */
    uint64_t seed;            /**< seed of the per-epoch shuffle (default 0) */
    int32_t shuffle;          /**< 1: shuffle rows every epoch; 0: fixed order (default 1) */
    int32_t num_threads;      /**< worker threads; 0 = all cores (default 0) */
    csae_progress_fn progress;/**< optional progress callback (default NULL) */
    void *user_data;          /**< passed to progress unchanged */
    int64_t dead_latent_window;/**< rows after which a latent absent from every k-code counts
                                    as dead (csae_model_copy_dead_latent_history); 0 = one epoch */
} csae_train_params;

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

#ifdef __cplusplus
}
#endif

#endif /* COMPRESSAE_TYPES_H */
