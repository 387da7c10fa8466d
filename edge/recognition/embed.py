"""FaceNet embeddings with a TFLite interpreter: preprocess exactly as the model was trained, then L2-normalise.

The Keras FaceNet (Inception-ResNet-v1) was trained on RGB crops standardised per image,
``(x - mean) / max(std, 1/sqrt(N))``; feeding it anything else (BGR, [0, 1] scaling) costs accuracy without
any error. The mirror image of a face is the same person, so averaging the two embeddings removes some pose
and lighting noise; both go through the interpreter as one batch of two.

The interpreter is not thread-safe: callers serialise access (FaceEngine holds a lock).
"""

from __future__ import annotations

import numpy as np


def prewhiten(crops_rgb: np.ndarray) -> np.ndarray:
    """Per-image standardisation of a batch (N, H, W, 3) of RGB uint8 crops, as float32."""
    x = crops_rgb.astype(np.float32)
    n = x[0].size
    mean = x.reshape(len(x), -1).mean(axis=1)
    std = x.reshape(len(x), -1).std(axis=1)
    std = np.maximum(std, np.float32(1.0 / np.sqrt(n)))
    return ((x - mean[:, None, None, None]) / std[:, None, None, None]).astype(np.float32, copy=False)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so that a dot product is the cosine similarity."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def run_model(interpreter, batch: np.ndarray) -> np.ndarray:
    """Raw model outputs (N, D) for a preprocessed float32 batch (N, H, W, 3).

    The interpreter's batch dimension is resized on demand, and integer inputs/outputs (a fully quantised
    model) are quantised/dequantised with the tensor's own scale and zero point.
    """
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != batch.shape:
        interpreter.resize_tensor_input(inp["index"], list(batch.shape), strict=False)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    if inp["dtype"] in (np.int8, np.uint8):
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        batch = np.clip(np.round(batch / scale + zero), info.min, info.max).astype(inp["dtype"])
    else:
        batch = batch.astype(inp["dtype"], copy=False)
    interpreter.set_tensor(inp["index"], batch)
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    result = interpreter.get_tensor(out["index"])
    if out["dtype"] in (np.int8, np.uint8):
        scale, zero = out["quantization"]
        result = (result.astype(np.float32) - zero) * scale
    return np.array(result, dtype=np.float32).reshape(len(batch), -1)


def embed_crops(interpreter, crops_bgr: np.ndarray, *, flip_average: bool = True,
                colour_order: str = "RGB", max_batch: int = 8) -> np.ndarray:
    """L2-normalised embeddings (N, D) of aligned crops (N, H, W, 3) in BGR uint8.

    With ``flip_average`` each crop and its mirror are embedded together and their normalised embeddings
    averaged (then normalised again).
    """
    crops = np.asarray(crops_bgr)
    if crops.ndim == 3:
        crops = crops[None]
    if len(crops) == 0:
        return np.zeros((0, 0), np.float32)
    if colour_order.upper() == "RGB":
        crops = crops[..., ::-1]
    batch = prewhiten(crops)
    if flip_average:
        batch = np.concatenate([batch, batch[:, :, ::-1, :]])
    outputs = [run_model(interpreter, batch[i:i + max_batch]) for i in range(0, len(batch), max_batch)]
    vectors = l2_normalise(np.concatenate(outputs))
    if flip_average:
        n = len(crops)
        vectors = l2_normalise(vectors[:n] + vectors[n:])
    return vectors
