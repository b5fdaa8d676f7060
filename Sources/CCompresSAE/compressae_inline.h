/* Params structs (and the row source) by value, sized by the caller's own header: each helper
 * passes sizeof(the struct) as the caller's compiler sees it, so a library
 * that knows more fields writes only the ones the caller has (and a struct
 * returned by value never depends on the library's layout). */

#ifdef __cplusplus
extern "C" {
#endif

/** csae_train_params holding the default recipe (csae_train_params_init). */
static inline csae_train_params csae_train_default_params(void) {
    csae_train_params params;
    params.struct_size = 0; /* stays 0, which every call refuses, if the init fails */
    csae_train_params_init(&params, (uint32_t)sizeof params, CSAE_RECIPE_DEFAULT);
    return params;
}

/** csae_train_params holding the PyTorch reference's recipe (csae_train_params_init). */
static inline csae_train_params csae_train_reference_params(void) {
    csae_train_params params;
    params.struct_size = 0; /* stays 0, which every call refuses, if the init fails */
    csae_train_params_init(&params, (uint32_t)sizeof params, CSAE_RECIPE_REFERENCE);
    return params;
}

/** csae_encode_params holding the defaults (csae_encode_params_init). */
static inline csae_encode_params csae_encode_default_params(void) {
    csae_encode_params params;
    params.struct_size = 0; /* stays 0, which every call refuses, if the init fails */
    csae_encode_params_init(&params, (uint32_t)sizeof params);
    return params;
}

/** csae_search_params holding the defaults (csae_search_params_init). */
static inline csae_search_params csae_search_default_params(void) {
    csae_search_params params;
    params.struct_size = 0; /* stays 0, which every call refuses, if the init fails */
    csae_search_params_init(&params, (uint32_t)sizeof params);
    return params;
}

/** csae_row_source holding the defaults (csae_row_source_init). */
static inline csae_row_source csae_row_source_defaults(void) {
    csae_row_source source;
    source.struct_size = 0; /* stays 0, which csae_model_train_source refuses, if the init fails */
    csae_row_source_init(&source, (uint32_t)sizeof source);
    return source;
}

#ifdef __cplusplus
}
#endif
