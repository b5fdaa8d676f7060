"""The CompresSAE reference computation in PyTorch, written from docs/maths.md.

A peer for benchmarks only (never imported by the library or its tests):
dense products everywhere, as the public reference runs them, so that speed
and loss curves can be compared side by side from identical weights.
"""
import math

import torch
import torch.nn.functional as F


def _unit_rows(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=-1, keepdim=True)


class ReferenceSAE(torch.nn.Module):
    def __init__(self, d: int, h: int, k: int, weights=None):
        super().__init__()
        self.k = k
        if weights is None:
            enc_w = torch.empty(d, h).uniform_(-math.sqrt(6 / h), math.sqrt(6 / h))
            dec_w = torch.empty(h, d).uniform_(-math.sqrt(6 / d), math.sqrt(6 / d))
            enc_b = torch.zeros(h)
            dec_w = _unit_rows(dec_w)
        else:
            enc_w, enc_b, dec_w = (torch.as_tensor(w, dtype=torch.float32).clone() for w in weights)
        self.encoder_w = torch.nn.Parameter(enc_w)
        self.encoder_b = torch.nn.Parameter(enc_b)
        self.decoder_w = torch.nn.Parameter(dec_w)

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        return _unit_rows(x) @ self.encoder_w + self.encoder_b

    @staticmethod
    def keep_top(pre: torch.Tensor, k: int) -> torch.Tensor:
        top = torch.topk(pre.abs(), k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values) * torch.sign(pre)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.keep_top(self.preactivations(x), self.k)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preactivations(x)
        recon_k = self.keep_top(pre, self.k) @ self.decoder_w
        recon_4k = self.keep_top(pre, 4 * self.k) @ self.decoder_w
        cos_k = (1 - F.cosine_similarity(x, recon_k, 1)).mean()
        cos_4k = (1 - F.cosine_similarity(x, recon_4k, 1)).mean()
        return cos_k + cos_4k / 8

    def train_step(self, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> float:
        loss = self.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            self.decoder_w.data = _unit_rows(self.decoder_w.data)
        return loss.item()
