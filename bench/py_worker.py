"""The Python peers of bench/run.ts (PyTorch, and NumPy for the article's loop) as a persistent worker, so
that they run inside the benchmark's interleaved schedule instead of in a separate process run.

Line protocol over stdin/stdout, one JSON object per line each way; every request gets exactly one reply:
  {"cmd": "hello"}                                   -> {"ok": true, "python", "torch", "numpy", "scipy", "cores"}
  {"cmd": "setup", "id", "kind", ...parameters}      -> {"ok": true}            builds workload `id`
  {"cmd": "run", "id", "threads", "calls", "warmup"} -> {"ok": true, "seconds"} `warmup` untimed calls, then
                                                        `calls` timed ones on `threads` threads
  {"cmd": "quit"}                                    -> (exits)
Any failure -> {"ok": false, "error": "..."}; the worker stays usable. Not a test; nothing here asserts a speed.
Kinds: lenet5-train / lenet5-infer (pixels: base64 uint8 N*784, labels: base64 uint8 N, batch; "model":
"resnet-mini" trains or runs that zoo model instead of LeNet-5),
conv-fwd / conv-fwdbwd (N, C, O, H, W; 3x3 'same'), gemm (M, N, K), article (NumPy + SciPy).
"""
import base64
import json
import os
import platform
import re
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception:  # noqa: BLE001 - any import failure means "no torch peer"
    torch = None
try:
    import numpy as np
    from scipy import signal
except Exception:  # noqa: BLE001
    np = None
    signal = None


def torch_blas():
    """BLAS_INFO from torch's build configuration ("generic": the reference BLAS, slow for torch.mm)."""
    if torch is None:
        return None
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else None


def lenet5():
    """LeNet-5 as in handprop's zoo (src/nn/models.ts): ReLU, max pooling, 61,706 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


class BasicBlock(nn.Module if torch is not None else object):
    """handprop's resnet-mini block: relu(conv-BN-ReLU-conv-BN(x) + shortcut(x)), shortcut conv 1x1-BN on a change."""

    def __init__(self, c, o, stride):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(c, o, 3, stride, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
            nn.Conv2d(o, o, 3, 1, padding=1, bias=False), nn.BatchNorm2d(o),
        )
        self.shortcut = (
            nn.Identity() if stride == 1 and c == o
            else nn.Sequential(nn.Conv2d(c, o, 1, stride, bias=False), nn.BatchNorm2d(o))
        )

    def forward(self, x):
        return F.relu(self.f(x) + self.shortcut(x))


def resnet_mini():
    """resnet-mini as in handprop's zoo (src/nn/models.ts): 16, 32/s2, 64/s2, 64 channels, GAP, dense 10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2), BasicBlock(64, 64, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


def mnist_batch(req):
    """The images bench/run.ts read with handprop's IDX reader, as float32 (N, 1, 28, 28) pixels / 255."""
    pixels = bytearray(base64.b64decode(req["pixels"]))
    labels = bytearray(base64.b64decode(req["labels"]))
    n = req["batch"]
    x = torch.frombuffer(pixels, dtype=torch.uint8)[: n * 784].to(torch.float32).div_(255).reshape(n, 1, 28, 28)
    y = torch.frombuffer(labels, dtype=torch.uint8)[:n].to(torch.int64)
    return x, y


ZOO = {"lenet5": lenet5, "resnet-mini": resnet_mini}


def setup_lenet_train(req):
    torch.manual_seed(1)
    model = ZOO[req.get("model", "lenet5")]().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = mnist_batch(req)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def setup_lenet_infer(req):
    torch.manual_seed(1)
    model = ZOO[req.get("model", "lenet5")]().eval()
    x, _ = mnist_batch(req)

    def infer():
        with torch.inference_mode():
            model(x)
    return infer


def setup_conv(req, backward):
    torch.manual_seed(1)
    n, c, o, h, w = req["N"], req["C"], req["O"], req["H"], req["W"]
    conv = nn.Conv2d(c, o, 3, padding=1)
    x = torch.randn(n, c, h, w)
    dy = torch.randn(n, o, h, w)
    if not backward:
        def forward():
            with torch.inference_mode():
                conv(x)
        return forward
    xg = x.clone().requires_grad_(True)

    def forward_backward():  # dx, dW and db, as handprop's Conv2D.backward
        conv.weight.grad = None
        conv.bias.grad = None
        xg.grad = None
        conv(xg).backward(dy)
    return forward_backward


def setup_gemm(req):
    torch.manual_seed(1)
    a = torch.randn(req["M"], req["K"])
    b = torch.randn(req["K"], req["N"])
    c = torch.empty(req["M"], req["N"])
    return lambda: torch.mm(a, b, out=c)


def setup_article(_req):
    """The article's training loop, as bench/article_numpy.py (its code unchanged but for the timer)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import article_numpy  # noqa: PLC0415 - only when asked: it needs SciPy
    return article_numpy.train


SETUPS = {
    "lenet5-train": setup_lenet_train,
    "lenet5-infer": setup_lenet_infer,
    "conv-fwd": lambda r: setup_conv(r, False),
    "conv-fwdbwd": lambda r: setup_conv(r, True),
    "gemm": setup_gemm,
    "article": setup_article,
}


def handle(req, workloads):
    cmd = req.get("cmd")
    if cmd == "hello":
        return {
            "ok": True, "python": platform.python_version(), "executable": sys.executable,
            "torch": torch.__version__ if torch is not None else None, "blas": torch_blas(),
            "numpy": np.__version__ if np is not None else None,
            "scipy": signal is not None, "cores": os.cpu_count(),
        }
    if cmd == "setup":
        kind = req.get("kind")
        if kind not in SETUPS:
            return {"ok": False, "error": f"unknown workload kind {kind!r}"}
        if kind == "article" and signal is None:
            return {"ok": False, "error": "numpy/scipy not importable"}
        if kind != "article" and torch is None:
            return {"ok": False, "error": "torch not importable"}
        workloads[req["id"]] = SETUPS[kind](req)
        return {"ok": True}
    if cmd == "run":
        fn = workloads.get(req.get("id"))
        if fn is None:
            return {"ok": False, "error": f"workload {req.get('id')!r} was not set up"}
        if torch is not None:
            torch.set_num_threads(int(req.get("threads", 1)))
        for _ in range(int(req.get("warmup", 0))):
            fn()
        t0 = time.perf_counter()
        for _ in range(int(req["calls"])):
            fn()
        return {"ok": True, "seconds": time.perf_counter() - t0}
    return {"ok": False, "error": f"unknown command {cmd!r}"}


def main():
    workloads = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req.get("cmd") == "quit":
                return
            reply = handle(req, workloads)
        except Exception as e:  # noqa: BLE001 - report, keep serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
