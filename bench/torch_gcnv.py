"""PyTorch's GCN-V (the original's `vegcn` model: GraphConv 256 -> 512 with mean aggregation by a sparse row-normalised
A, then Linear, PReLU, Linear) on the CUDA device, in fp32 with TF32 off: the comparison point of bench/vegcn.ts,
measured in the same run on the same graph, features and weights.

    python3 bench/torch_gcnv.py DIR N DIM HID NNZ

DIR holds raw little-endian files written by bench/vegcn.ts: x.bin (float32 N x DIM), row_ptr.bin (int32 N + 1),
cols.bin (int32 NNZ), vals.bin (float32 NNZ), params.bin (float32, the state-dict tensors in order: conv1.weight
2*DIM x HID, conv1.bias, classifier.0.weight HID x HID, classifier.0.bias, classifier.1.weight (PReLU) HID,
classifier.2.weight 1 x HID, classifier.2.bias 1), target.bin (float32 N). Timed on data already on the device
(synchronised before and after): inference (forward), and one training iteration (forward, MSE, backward, SGD with
momentum 0.9 and weight decay 1e-5). Writes pred.bin (float32 N, the inference output) and prints one JSON line;
exits 3, printing why, where torch or a CUDA device is missing.
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

folder, n, dim, hid, nnz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])


def raw(name: str, dtype, count: int) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(f"{folder}/{name}", dtype=dtype, count=count)).cuda()


x = raw("x.bin", np.float32, n * dim).reshape(n, dim)
row_ptr = raw("row_ptr.bin", np.int32, n + 1).to(torch.int64)
cols = raw("cols.bin", np.int32, nnz).to(torch.int64)
vals = raw("vals.bin", np.float32, nnz)
adj = torch.sparse_csr_tensor(row_ptr, cols, vals, size=(n, n))
target = raw("target.bin", np.float32, n)
flat = np.fromfile(f"{folder}/params.bin", dtype=np.float32)
shapes = [(2 * dim, hid), (hid,), (hid, hid), (hid,), (hid,), (1, hid), (1,)]
params, at = [], 0
for shape in shapes:
    size = int(np.prod(shape))
    params.append(torch.from_numpy(flat[at : at + size].reshape(shape).copy()).cuda().requires_grad_(True))
    at += size
w1, b1, w2, b2, slope, w3, b3 = params


def forward() -> torch.Tensor:
    h = torch.relu(torch.cat([x, adj @ x], dim=1) @ w1 + b1)
    u = h @ w2.T + b2
    return (torch.where(u > 0, u, slope * u) @ w3.T + b3).view(-1)


opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-5)


def train_step() -> float:
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(forward(), target)
    loss.backward()
    opt.step()
    return float(loss.detach())


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    value = fn()
    torch.cuda.synchronize()
    return value, time.perf_counter() - t0


with torch.no_grad():
    forward()  # warm-up: cuBLAS and cuSPARSE handles, kernels
    pred, infer_seconds = timed(forward)
pred.cpu().numpy().astype(np.float32).tofile(f"{folder}/pred.bin")
train_step()  # warm-up of the backward kernels (changes the weights; the timing does not depend on them)
_, train_seconds = timed(train_step)
print(json.dumps({"inference": infer_seconds, "train": train_seconds, "device": torch.cuda.get_device_name(0),
                  "torch": torch.__version__, "tf32": torch.backends.cuda.matmul.allow_tf32}))
