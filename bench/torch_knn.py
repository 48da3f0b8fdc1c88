"""PyTorch's exact kNN by inner product in fp32 (TF32 off) on the rows of a raw float32 file: the comparison point of
bench/gpu.ts, measured in the same run on the same rows.

    python3 bench/torch_knn.py FEATURES N DIM K OUT_IDS

Blocks of query rows against all rows (about 4 GiB of similarities per block), torch.topk per block; the timed part
is the search on rows already on the device (synchronised before and after). Writes the ids as int32 N x K and prints
one JSON line; exits 3, printing why, where torch or a CUDA device is missing.
"""
import json
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as err:
    print(json.dumps({"skip": f"import failed: {err}"}))
    sys.exit(3)
if not torch.cuda.is_available():
    print(json.dumps({"skip": "torch finds no CUDA device"}))
    sys.exit(3)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")

path, n, dim, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = torch.from_numpy(np.fromfile(path, dtype=np.float32, count=n * dim).reshape(n, dim)).cuda()
step = max(1, min(n, (4 << 30) // (4 * n)))


def search() -> torch.Tensor:
    ids = torch.empty((n, k), dtype=torch.int32, device="cuda")
    for b0 in range(0, n, step):
        ids[b0 : b0 + step] = torch.topk(x[b0 : b0 + step] @ x.T, k, dim=1).indices.to(torch.int32)
    return ids


torch.topk(x[:256] @ x.T, k, dim=1)  # warm-up: cuBLAS handles, kernels
torch.cuda.synchronize()
t0 = time.perf_counter()
ids = search()
torch.cuda.synchronize()
seconds = time.perf_counter() - t0
ids.cpu().numpy().tofile(out)
print(json.dumps({"seconds": seconds, "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                  "tf32": torch.backends.cuda.matmul.allow_tf32}))
