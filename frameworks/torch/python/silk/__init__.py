"""Silk: collective communication for one training job across distant regions.

Python bindings live in subpackages, one per framework:

    import silk.torch   # registers Silk as the torch.distributed backend "silk"
"""
