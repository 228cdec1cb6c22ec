"""Diagrams several tests use (as source text): the language reference's examples, NequIP's convolution and a fully
connected layer."""

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

# the examples of docs/language.md, as the parser and the fuzzer read them
NEQUIP = """\
# comments start with '#'
diagram NequIPConv(mul = 32, lmax = 2) {
    input  h   : mul x (0e + 1o + 2e) over node     # node features
    input  vec : 1o over edge                       # edge vectors r_j - r_i
    input  R   : weights over edge                  # external per-edge weights (radial MLP output)
    input  src : index edge -> node                 # integer index tensors
    input  dst : index edge -> node

    Y   = sh(vec, lmax)                             # real spherical harmonics 0e+1o+2e
    m   = couple(h[src], Y) -> mul x (0e + 1o + 2e + 1e + 2o) [mode = uvu, weights = R]
    agg = sum(m, by = dst) * 0.1
    output out = linear(agg) -> mul x (0e + 1o + 2e)
}
"""

MACE = """\
diagram MACEProduct(mul = 64, nu = 3, species = 4) {
    input A : mul x (0e + 1o + 2e + 3o) over node
    input z : index node -> species                 # element of each atom, 0..species-1
    output B = power(A, nu) -> mul x (0e + 1o) [weights = learned[z]]
}
"""

FUSION = """\
diagram FusionBlock(mul = 16) {
    input a : mul x (0e + 1o + 2e) over node
    input b : mul x (0e + 1o + 2e) over node
    input c : mul x (0e + 1o + 2e) over node
    output y = fuse(a, b, c) -> mul x (0e + 1o + 2e) [weights = learned]
}
"""

EXAMPLES = [NEQUIP, MACE, FUSION]
