from flashinfer import top_k  # harness: portable-ok(only registered by the CUDA model loader)

# harness: portable-ok(a marker on its own line covers the next line)
import cuda.bindings.driver

import flashinfer.norm  # harness: portable-ok()
