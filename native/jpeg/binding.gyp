{
  "targets": [
    {
      "target_name": "vatt_jpeg",
      "sources": ["decode_jpeg.c"],
      "cflags": ["-O2", "-std=c11"],
      "libraries": ["-ljpeg"]
    }
  ]
}
