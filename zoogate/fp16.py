"""float16 variants of fp32 ONNX exports, made with onnxruntime's float16 converter and cached.

Note on running them with ONNX Runtime's CPU provider: it has no float16 Conv/Gemm kernels on x86, so
it inserts casts and accumulates those in float32 (weights still float16-rounded), while ops that have
float16 kernels keep float16 activations. A CPU run therefore shows float16 storage error but not
float16 accumulation, which happens on the device (Ascend/VACC fp16 builds, a GPU). With
``keep_io_types=True`` ORT may also drop a float32->float16->float32 cast pair at the output, hiding an
out-of-range logit; ``keep_io_types=False`` (float16 outputs, as a device returns them) shows it as inf.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

from filelock import FileLock

from zoogate import cache
from zoogate.errors import ZoogateError

FP16_MAX = 65504.0          # largest finite float16; anything beyond becomes inf


def fp16_path(src: str | os.PathLike, keep_io_types: bool = True) -> Path:
    """Where the float16 variant of ``src`` lives: in the cache (never beside a user's file), named
    <stem>-<sha of the source path>.fp16.onnx; the stamp beside it pins the source's content."""
    src = Path(src)
    tag = "fp16" if keep_io_types else "fp16-io16"
    where = cache.key({"source": os.fspath(src.resolve())})
    return cache.root() / "fp16" / f"{src.stem}-{where}.{tag}.onnx"


def _stamp(src: Path, keep_io_types: bool) -> dict:
    import onnxruntime

    return {"source": src.name, "source_sha256": cache.sha256_file(src), "keep_io_types": keep_io_types,
            "converter": f"onnxruntime.transformers.float16 {onnxruntime.__version__}"}


def convert(src: str | os.PathLike, out: str | os.PathLike | None = None, *, keep_io_types: bool = True) -> Path:
    """float16 copy of the fp32 ONNX model ``src``; returns its path.

    ``keep_io_types=True`` keeps the graph's inputs and outputs float32 (cast nodes at the edges), so the
    same float32 batches feed both variants. ``keep_io_types=False`` makes them float16, as a device build
    that returns fp16 outputs would (an out-of-range logit then comes back as inf).
    The result is reused while the source's sha256 and the converter version are unchanged
    (a ``.json`` stamp beside it says what it was made from).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src = Path(src)
    if not src.is_file():
        raise ZoogateError("ONNX model not found", src)
    dst = Path(out) if out is not None else fp16_path(src, keep_io_types)
    stamp_file = dst.with_name(dst.name + ".json")
    stamp = _stamp(src, keep_io_types)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dst) + ".lock"):
        if dst.is_file() and stamp_file.is_file():
            try:
                if json.loads(stamp_file.read_text()) == stamp:
                    return dst
            except (OSError, ValueError):
                pass                     # unreadable stamp: rebuild
        try:
            model = onnx.load(str(src))
        except Exception as exc:         # protobuf DecodeError, OSError...
            raise ZoogateError(f"not a readable ONNX model ({exc})", src) from None
        with warnings.catch_warnings():
            # the converter warns for every weight it clamps into the float16 range; expected and harmless here
            warnings.simplefilter("ignore", UserWarning)
            half = convert_float_to_float16(model, keep_io_types=keep_io_types)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
        os.close(fd)
        try:
            onnx.save(half, tmp)
            os.chmod(tmp, cache.new_file_mode(dst.parent))      # mkstemp made it 0600; a shared cache follows the umask
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        stamp_file.write_text(json.dumps(stamp, indent=1, sort_keys=True))
    return dst
