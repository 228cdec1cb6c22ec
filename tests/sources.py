"""Diagrams several tests compile (as source text): the shapes of NequIP's convolution and a fully connected layer."""

# the channel-wise convolution of NequIP: features of every degree up to lmax times the edge harmonics, per-edge
# radial weights (the couple the native kernel computes)
CONV_SOURCE = """
diagram Conv(mul = 32, lmax = 2) {
    input x : mul x sh(lmax) over edge
    input vec : 1o over edge
    input R : weights over edge
    output y = couple(x, sh(vec, lmax)) -> lmax lmax [mode = uvu, weights = R]
}
"""

# a fully connected (uvw) coupling with shared learned weights: SEGNN's and Cormorant's node layers
NODE_SOURCE = """
diagram NodeLayer(mul = 128, lmax = 2) {
    input h : mul x (0e + 1o + 2e) over node
    input vec : 1o over node
    output y = couple(h, sh(vec, lmax)) -> mul x (0e + 1o + 2e) [mode = uvw]
}
"""
