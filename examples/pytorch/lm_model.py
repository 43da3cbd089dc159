"""A small GPT-style decoder for examples/pytorch/train_lm.py: byte-level
vocabulary (256), learned positions, pre-norm blocks of causal multi-head
self-attention and a 4x MLP, the output layer tied to the input embedding.
Written against torch 1.13 (no scaled_dot_product_attention there)."""
import math

import torch
from torch import nn
from torch.nn import functional as F

VOCAB = 256


class CausalSelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.heads))
        scores = scores.masked_fill(mask[:t, :t], float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, layers, width, heads, context):
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(VOCAB, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        # True above the diagonal: a position never attends to later ones. A
        # plain attribute, not a buffer: DDP would broadcast it, and gloo
        # cannot broadcast bool tensors.
        self.mask = torch.triu(torch.ones(context, context, dtype=torch.bool), 1)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.embed(idx) + self.position(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x, self.mask)
        return self.ln(x) @ self.embed.weight.t()  # tied output layer



def byte_loss(logits, targets):
    """Mean cross-entropy per byte, in nats (call the DDP wrapper for the
    logits: its forward is what arms the gradient exchange)."""
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
