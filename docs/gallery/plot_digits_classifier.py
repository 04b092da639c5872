"""
Training a classifier on the digits data set
============================================

A two-layer network trained with a ``GradientTape`` on scikit-learn's bundled 8×8 digits
(1,797 images, 10 classes; in the ``examples`` extra): softmax cross entropy, full-batch
gradient descent with momentum, and a compiled step (``ad.function``).
"""
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import gpuad as ad

digits = load_digits()
images = (digits.data / 16.0).astype(np.float32)
labels = digits.target.astype(np.int32)
order = np.random.default_rng(0).permutation(len(images))
train, test = order[:1400], order[1400:]

rng = np.random.default_rng(1)
w1 = ad.Variable(rng.standard_normal((64, 64)).astype(np.float32) * 0.2)
b1 = ad.Variable(np.zeros(64, np.float32))
w2 = ad.Variable(rng.standard_normal((64, 10)).astype(np.float32) * 0.2)
b2 = ad.Variable(np.zeros(10, np.float32))
weights = [w1, b1, w2, b2]
velocity = [ad.Variable(np.zeros(w.shape, np.float32)) for w in weights]


def logits(x):
    return ad.matmul(ad.tanh(ad.matmul(x, w1) + b1), w2) + b2


@ad.function
def train_step(x, y):
    with ad.GradientTape() as tape:
        loss = ad.reduce_mean(ad.nn.sparse_softmax_cross_entropy_with_logits(y, logits(x)))
    for w, v, g in zip(weights, velocity, tape.gradient(loss, weights)):
        v.assign(0.9 * v - 0.5 * g)
        w.assign_add(v)
    return loss


x_train, y_train = ad.constant(images[train]), ad.constant(labels[train])
losses = [float(train_step(x_train, y_train)) for _ in range(300)]
predicted = ad.argmax(logits(ad.constant(images[test])), axis=1).numpy()
accuracy = (predicted == labels[test]).mean()
print(f"test accuracy after 300 steps: {accuracy:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].semilogy(losses)
axes[0].set_xlabel("step")
axes[0].set_ylabel("training loss")
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (labels[test], predicted), 1)
axes[1].imshow(confusion, cmap="Blues")
axes[1].set_xlabel("predicted")
axes[1].set_ylabel("true")
axes[1].set_title(f"test accuracy {accuracy:.1%}")
fig.tight_layout()
plt.show()
