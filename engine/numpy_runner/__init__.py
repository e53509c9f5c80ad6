"""The built-in inference engine: a llama transformer in pure Python + numpy.

- `gguf_reader`, `llama2c_reader`: model files -> `Config` + zero-copy weight `Tensor`s,
  every size checked against the file before anything is allocated.
- `tensors`: ggml block layouts (Q8_0, Q4_0, Q4_1), llama2.c int8 groups, dequantization.
- `memory`: the memory planner (modes mmap, cache, auto, stream).
- `model`: `Config`, `Weights`, `RunState`, `Transformer.forward` in the shape of run.c.
- `loader`: open any supported file and plan its memory.
- `threads`: BLAS thread count and CPU pinning.
- `engine`: `NumpyChatEngine`, the `ChatEngine` the application uses.
"""
