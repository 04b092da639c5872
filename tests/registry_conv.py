"""Registry entries of gpuad/conv.py: convolutions and pooling, tiny so that the second-order
checks stay fast."""
import gpuad as ad
from op_registry import register, rng

X = rng(31).uniform(-1, 1, (1, 5, 5, 2))    # NHWC
W = rng(32).uniform(-1, 1, (3, 3, 2, 2))    # HWIO
XG = rng(33).uniform(-1, 1, (1, 4, 4, 4))   # four channels: two groups of the filters below
WG = rng(34).uniform(-1, 1, (2, 2, 2, 2))
X1 = rng(35).uniform(-1, 1, (2, 6, 2))      # NWC
W1 = rng(36).uniform(-1, 1, (3, 2, 3))
# distinct values far apart (central differences never cross a tie), in random places
P = rng(37).permutation(40).reshape(1, 4, 5, 2) * 0.1 - 2.0

register("nn.conv2d", lambda x, w: ad.nn.conv2d(x, w, 1, "SAME") ** 2, X, W)
register("nn.conv2d", lambda x, w: ad.nn.conv2d(x, w, [2, 1], "VALID"), X, W)
register("nn.conv2d", lambda x, w: ad.nn.conv2d(x, w, 1, [[0, 0], [2, 0], [1, 3], [0, 0]],
                                                dilations=2) ** 2, X, W)
register("nn.conv2d", lambda x, w: ad.nn.conv2d(ad.transpose(x, [0, 3, 1, 2]), w, 2, "SAME",
                                                data_format="NCHW"), X, W)
register("nn.conv2d", lambda x, w: ad.nn.conv2d(x, w, 1, "SAME") ** 2, XG, WG)  # grouped
register("nn.conv1d", lambda x, w: ad.nn.conv1d(x, w, 2, "SAME") ** 2, X1, W1)
register("nn.conv1d", lambda x, w: ad.nn.conv1d(x, w, 1, "VALID", dilations=2), X1, W1)
register("nn.max_pool2d", lambda x: ad.nn.max_pool2d(x, 2, 2, "SAME") ** 2, P)
register("nn.max_pool2d", lambda x: ad.nn.max_pool2d(x, [3, 2], 1, "VALID") ** 2, P)  # overlaps
register("nn.avg_pool2d", lambda x: ad.nn.avg_pool2d(x, 2, 1, "SAME") ** 2, X)
register("nn.avg_pool2d", lambda x: ad.nn.avg_pool2d(ad.transpose(x, [0, 3, 1, 2]), 3, 2,
                                                     "VALID", "NCHW") ** 2, X)
register("nn.max_pool", lambda x: ad.nn.max_pool(x[0], 2, 1, "SAME") ** 2, P)  # 1-D
register("nn.avg_pool", lambda x: ad.nn.avg_pool(ad.reshape(x, (1, 2, 5, 5, 1)), 2, 2,
                                                 "SAME") ** 2, X)  # 3-D
