"""Time of one gradient all-reduce, shared by the network model and the no-network speed model.

A ring all-reduce of S bytes over n accelerators moves 2 (n - 1) / n x S through every member
(reduce-scatter, then all-gather). Inside one node the ring runs at the intra-node bandwidth b per
accelerator; across k nodes it runs at the slower of b and the inter-node rate r of a hop. The
hierarchical variant reduces inside each node of g accelerators first, then rings across nodes:

    ring:          2 (n - 1) / n x S / min(r, b) + 2 (n - 1) x max(l_hop, l_nv)
    hierarchical:  2 (g - 1) / g x S / b + 2 (g - 1) x l_nv  +  2 (k - 1) / k x S / r + 2 (k - 1) x l_hop
"""

from __future__ import annotations


def allreduce_seconds(n: int, per_node: int, nodes: int, size: float, intra: float, inter: float,
                      algorithm: str = "ring", intra_latency: float = 0.0, hop_latency: float = 0.0) -> float:
    """Seconds of one all-reduce of `size` bytes; bandwidths in bytes/s per direction."""
    if n <= 1 or size <= 0:
        return 0.0
    if nodes <= 1:
        return 2 * (n - 1) / n * size / intra + 2 * (n - 1) * intra_latency
    if algorithm == "ring":
        return 2 * (n - 1) / n * size / min(inter, intra) + 2 * (n - 1) * max(hop_latency, intra_latency)
    g = per_node
    inside = 2 * (g - 1) / g * size / intra + 2 * (g - 1) * intra_latency if g > 1 else 0.0
    return inside + 2 * (nodes - 1) / nodes * size / inter + 2 * (nodes - 1) * hop_latency
