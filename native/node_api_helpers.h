#ifndef VATT_NODE_API_HELPERS_H
#define VATT_NODE_API_HELPERS_H
#include <node_api.h>
#include <stddef.h>

// Whether `value` is a typed array of type `want`; its data and element count in *data and *length.
static inline int typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data,
                              size_t *length) {
  bool is;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}
#endif
