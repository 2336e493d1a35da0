"""KV-cache quantization for dLLM inference: methods, BAOS, the accuracy simulator, analysis.

- `make_cache_factory(method, bits, decode=..., **options)` builds the quantized KV cache of a
  registered method (`METHODS`) for `npu.models.decoding.generate`.
- `BaosKVCache` / `BaosOptions`: Block-Adaptive Online Smoothing (docs/baos.md).
- `run_accuracy_grid`: exact match / perplexity of every method x bits x cache mode with the
  model in the NPU's arithmetic.
- `kv_bytes_per_token(method, bits, model_config)`: storage cost for the performance models.
- `npu.quant.kv_analysis`: how K/V statistics move across blocks and steps.
- `npu.quant.experiments`: the models under test and the BAOS ablation (stages: npu.stages.quantize).
"""

from npu.quant.accuracy import SampleSizes, run_accuracy_grid
from npu.quant.baos import BaosKVCache, BaosOptions
from npu.quant.calibration import calibrate_static_smoothing
from npu.quant.kv_cache import BlockLayout
from npu.quant.methods import METHODS, get_method, make_cache_factory
from npu.quant.quantizers import UnsupportedBitsError
from npu.quant.smoothing import StaticSmoothing
from npu.quant.storage import kv_bytes_per_token, kv_cache_bytes

__all__ = [
    "METHODS",
    "BaosKVCache",
    "BaosOptions",
    "BlockLayout",
    "SampleSizes",
    "StaticSmoothing",
    "UnsupportedBitsError",
    "calibrate_static_smoothing",
    "get_method",
    "kv_bytes_per_token",
    "kv_cache_bytes",
    "make_cache_factory",
    "run_accuracy_grid",
]
