// Matrix products on ONNX Runtime's CPU library called from C (model/fast/onnx-gemm.ts): the same one-node sessions as
// through onnxruntime-node, without its JavaScript run path, which wraps every input and output in objects and
// copies each output into a fresh ArrayBuffer (~12 MB a tiny training step, enough external memory for V8 to run
// a full garbage collection every third step). Here inputs and the output are tensors over the caller's memory.
//
// The library is the one onnxruntime-node already loaded (its path comes from JavaScript); its C API is reached
// through OrtGetApiBase, the only exported symbol, as a table of function pointers. The API is append-only across
// releases, so requesting version ORT_API_VERSION_USED gives the same slots in every later library; only the slots
// used here are named (indices from onnxruntime_c_api.h).
#include "ort_gemm.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORT_API_VERSION_USED 13

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtSession OrtSession;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtValue OrtValue;

typedef struct {
  const void *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

// Slots of struct OrtApi used here.
enum {
  SLOT_GET_ERROR_MESSAGE = 2,
  SLOT_CREATE_ENV = 3,
  SLOT_CREATE_SESSION_FROM_ARRAY = 8,
  SLOT_RUN = 9,
  SLOT_CREATE_SESSION_OPTIONS = 10,
  SLOT_SET_SESSION_EXECUTION_MODE = 13,
  SLOT_DISABLE_MEM_PATTERN = 17,
  SLOT_ENABLE_CPU_MEM_ARENA = 18,
  SLOT_SET_SESSION_LOG_SEVERITY_LEVEL = 22,
  SLOT_SET_SESSION_GRAPH_OPTIMIZATION_LEVEL = 23,
  SLOT_SET_INTRA_OP_NUM_THREADS = 24,
  SLOT_SET_INTER_OP_NUM_THREADS = 25,
  SLOT_CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE = 49,
  SLOT_CREATE_CPU_MEMORY_INFO = 69,
  SLOT_RELEASE_ENV = 92,
  SLOT_RELEASE_STATUS = 93,
  SLOT_RELEASE_MEMORY_INFO = 94,
  SLOT_RELEASE_SESSION = 95,
  SLOT_RELEASE_VALUE = 96,
  SLOT_RELEASE_SESSION_OPTIONS = 100,
  SLOT_ADD_SESSION_CONFIG_ENTRY = 130,
};

typedef const char *(*GetErrorMessageFn)(const OrtStatus *);
typedef OrtStatus *(*CreateEnvFn)(int level, const char *logid, OrtEnv **out);
typedef OrtStatus *(*CreateSessionFromArrayFn)(const OrtEnv *, const void *, size_t, const OrtSessionOptions *,
                                               OrtSession **);
typedef OrtStatus *(*RunFn)(OrtSession *, const void *run_options, const char *const *input_names,
                            const OrtValue *const *inputs, size_t input_len, const char *const *output_names,
                            size_t output_len, OrtValue **outputs);
typedef OrtStatus *(*CreateSessionOptionsFn)(OrtSessionOptions **);
typedef OrtStatus *(*OptionsIntFn)(OrtSessionOptions *, int);
typedef OrtStatus *(*OptionsFn)(OrtSessionOptions *);
typedef OrtStatus *(*AddConfigEntryFn)(OrtSessionOptions *, const char *key, const char *value);
typedef OrtStatus *(*CreateTensorFn)(const OrtMemoryInfo *, void *data, size_t bytes, const int64_t *shape,
                                     size_t rank, int type, OrtValue **out);
typedef OrtStatus *(*CreateCpuMemoryInfoFn)(int allocator_type, int mem_type, OrtMemoryInfo **out);
typedef void (*ReleaseFn)(void *);

static const void *const *api;
static OrtEnv *env;
static OrtMemoryInfo *cpu_memory;

#define FN(type, slot) ((type)(api[(slot)]))

// An error message from a status (released); NULL for success.
static int failed(OrtStatus *status, char *message, size_t size) {
  if (!status) return 0;
  snprintf(message, size, "%s", FN(GetErrorMessageFn, SLOT_GET_ERROR_MESSAGE)(status));
  FN(ReleaseFn, SLOT_RELEASE_STATUS)(status);
  return 1;
}

int ort_gemm_open(const char *library, char *message, size_t size) {
  if (api) return 0;
  void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    snprintf(message, size, "dlopen %s: %s", library, dlerror());
    return 1;
  }
  const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(handle, "OrtGetApiBase");
  const OrtApiBase *base = get_base ? get_base() : NULL;
  const char *version = base ? base->GetVersionString() : NULL;
  if (!base || !version || strncmp(version, "1.", 2) != 0) {
    snprintf(message, size, "%s: no ONNX Runtime 1.x C API (OrtGetApiBase)", library);
    return 1;
  }
  const void *const *table = base->GetApi(ORT_API_VERSION_USED);
  if (!table) {
    snprintf(message, size, "ONNX Runtime %s does not offer C API version %d", version, ORT_API_VERSION_USED);
    return 1;
  }
  api = table;
  // ORT_LOGGING_LEVEL_ERROR; one environment per process: a second request shares the existing one.
  if (failed(FN(CreateEnvFn, SLOT_CREATE_ENV)(3, "vatt", &env), message, size)) {
    api = NULL;
    return 1;
  }
  if (failed(FN(CreateCpuMemoryInfoFn, SLOT_CREATE_CPU_MEMORY_INFO)(1, 0, &cpu_memory), message, size)) {
    FN(ReleaseFn, SLOT_RELEASE_ENV)(env);
    env = NULL;
    api = NULL;
    return 1;
  }
  return 0;
}

struct ort_gemm_session {
  OrtSession *session;
};

ort_gemm_session *ort_gemm_session_create(const void *model, size_t bytes, int threads, char *message,
                                          size_t size) {
  if (!api) {
    snprintf(message, size, "the ONNX Runtime library is not open");
    return NULL;
  }
  OrtSessionOptions *options = NULL;
  if (failed(FN(CreateSessionOptionsFn, SLOT_CREATE_SESSION_OPTIONS)(&options), message, size)) return NULL;
  OrtSession *session = NULL;
  // Sequential, one inter-op thread, all graph optimisations, CPU arena on, no memory pattern (shapes vary), only
  // errors logged, and pool threads that sleep between products (the JavaScript thread works alone there).
  int bad = failed(FN(OptionsIntFn, SLOT_SET_INTRA_OP_NUM_THREADS)(options, threads), message, size) ||
            failed(FN(OptionsIntFn, SLOT_SET_INTER_OP_NUM_THREADS)(options, 1), message, size) ||
            failed(FN(OptionsIntFn, SLOT_SET_SESSION_EXECUTION_MODE)(options, 0), message, size) ||
            failed(FN(OptionsIntFn, SLOT_SET_SESSION_GRAPH_OPTIMIZATION_LEVEL)(options, 99), message, size) ||
            failed(FN(OptionsFn, SLOT_ENABLE_CPU_MEM_ARENA)(options), message, size) ||
            failed(FN(OptionsFn, SLOT_DISABLE_MEM_PATTERN)(options), message, size) ||
            failed(FN(OptionsIntFn, SLOT_SET_SESSION_LOG_SEVERITY_LEVEL)(options, 3), message, size) ||
            failed(FN(AddConfigEntryFn, SLOT_ADD_SESSION_CONFIG_ENTRY)(options, "session.intra_op.allow_spinning", "0"),
                   message, size) ||
            failed(FN(CreateSessionFromArrayFn, SLOT_CREATE_SESSION_FROM_ARRAY)(env, model, bytes, options, &session),
                   message, size);
  FN(ReleaseFn, SLOT_RELEASE_SESSION_OPTIONS)(options);
  if (bad) return NULL;
  ort_gemm_session *s = malloc(sizeof *s);
  if (!s) {
    FN(ReleaseFn, SLOT_RELEASE_SESSION)(session);
    snprintf(message, size, "out of memory");
    return NULL;
  }
  s->session = session;
  return s;
}

void ort_gemm_session_release(ort_gemm_session *s) {
  if (!s) return;
  if (api) FN(ReleaseFn, SLOT_RELEASE_SESSION)(s->session);
  free(s);
}

int ort_gemm_run(ort_gemm_session *s, const float *a, const int64_t *dims_a, size_t rank_a, const float *b,
                 const int64_t *dims_b, size_t rank_b, float *out, const int64_t *dims_out, size_t rank_out,
                 size_t len_a, size_t len_b, size_t len_out, char *message, size_t size) {
  CreateTensorFn tensor = FN(CreateTensorFn, SLOT_CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE);
  OrtValue *values[3] = {NULL, NULL, NULL};
  // ORT reads the inputs only; its API takes non-const data pointers for every tensor.
  int bad = failed(tensor(cpu_memory, (void *)a, len_a * sizeof(float), dims_a, rank_a, 1, &values[0]), message, size) ||
            failed(tensor(cpu_memory, (void *)b, len_b * sizeof(float), dims_b, rank_b, 1, &values[1]), message, size) ||
            failed(tensor(cpu_memory, out, len_out * sizeof(float), dims_out, rank_out, 1, &values[2]), message, size);
  if (!bad) {
    static const char *const inputs[] = {"A", "B"};
    static const char *const outputs[] = {"Y"};
    bad = failed(FN(RunFn, SLOT_RUN)(s->session, NULL, inputs, (const OrtValue *const *)values, 2, outputs, 1,
                                     &values[2]),
                 message, size);
  }
  for (int i = 0; i < 3; i++) FN(ReleaseFn, SLOT_RELEASE_VALUE)(values[i]);
  return bad;
}
