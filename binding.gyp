{
  "targets": [
    {
      "target_name": "vatt_kernels",
      "sources": ["native/binding.c", "native/crop_colour.c", "native/audio_noise.c", "native/dropout.c", "native/optim.c", "native/activations.c", "native/norms.c", "native/attention.c", "native/rows.c", "native/patches.c", "native/ort_gemm.c", "native/nibble_scan.c", "native/sgemm.c"],
      "libraries": ["-lpthread", "-ldl"],
      "cflags": ["-O3", "-std=c11", "-Wno-psabi", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math", "-fno-signed-zeros"]
    }
  ]
}
