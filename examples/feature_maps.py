"""What the first convolution layer of LeNet-5 learned: its kernels and the feature maps they make of one
digit, saved as a PNG grid.

    python examples/feature_maps.py                                  # train 5 epochs, write feature_maps.png
    python examples/feature_maps.py --checkpoint runs/lenet5_modern-digits/best.ckpt --index 7
    python examples/feature_maps.py --out maps.png --epochs 10

Each kernel is a small template; convolving the image with it (then the ReLU) gives one feature map that is
bright wherever the image locally matches the template: strokes of a given orientation, edges on one side.
(Bright frames in some maps come from the 'same' padding: its zeros are brighter than the standardised
background, whose value is negative, so a kernel sensitive to that step lights up along the border.)
A checkpoint written by `convkit train` (the modernised LeNet-5 on the digits) can be shown instead of
training here. Needs scikit-learn for the digits and matplotlib for the PNG (pip install "convkit[demo]").
"""
import argparse
import sys

import numpy as np

import convkit
from convkit import data, models, optim
from convkit.preprocessing import ChannelStandardization


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", metavar="CKPT", help="a trained model (e.g. from convkit train) to show")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs when no checkpoint is given")
    parser.add_argument("--train-size", type=int, default=0, help="first N training images (0: all 1,438)")
    parser.add_argument("--layer", default="conv1", help="the convolution layer to show (default conv1)")
    parser.add_argument("--index", type=int, default=2, help="which test digit to feed in (default 2, a two)")
    parser.add_argument("--out", default="feature_maps.png", help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def plot(kernels: np.ndarray, image: np.ndarray, maps: np.ndarray, title: str, path: str) -> None:
    """Row 1: the input and each kernel (kh, kw, 1, C_out); row 2: the feature map of each kernel (H, W, C_out)."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    count = kernels.shape[-1]
    fig, axes = plt.subplots(2, count + 1, figsize=(1.6 * (count + 1), 3.6), squeeze=False)
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title("input", fontsize=9)
    axes[1, 0].axis("off")
    # One symmetric colour scale for all kernels, centred on 0: the sign of a weight matters (excite/inhibit).
    limit = np.abs(kernels).max()
    for c in range(count):
        axes[0, c + 1].imshow(kernels[:, :, 0, c], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[0, c + 1].set_title(f"kernel {c}", fontsize=9)
        axes[1, c + 1].imshow(maps[:, :, c], cmap="magma")
        axes[1, c + 1].set_title(f"map {c}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(h_pad=1.5)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    try:
        import matplotlib  # noqa: F401  (checked first: no point training if the picture cannot be drawn)
    except ImportError:
        print('feature_maps: matplotlib is not installed, so no PNG can be written; skipping '
              '(pip install matplotlib, or pip install "convkit[demo]")')
        return 0

    x_train, y_train = data.load_digits("train")
    x_test, y_test = data.load_digits("test")
    # The same per-channel standardisation as `convkit train`, fitted on all training images, so that a
    # checkpoint from it sees the inputs it was trained on.
    scaler = ChannelStandardization().fit(x_train)
    x_train, x_test = (scaler.transform(x).astype(np.float32) for x in (x_train, x_test))
    if args.checkpoint:
        model = convkit.load_model(args.checkpoint)
    else:
        if args.train_size:
            x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
        convkit.initializers.set_seed(args.seed)
        model = models.lenet5_modern(input_shape=(8, 8, 1), classes=10)
        model.compile(optimizer=optim.SGD(lr=0.02, momentum=0.9), loss="softmax_cross_entropy",
                      metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, seed=args.seed, verbose=2)
    # predict, not evaluate: a loaded checkpoint has no loss compiled in.
    print(f"test accuracy: {100 * np.mean(model.predict(x_test).argmax(axis=1) == y_test):.2f}%")

    conv = model.get_layer(args.layer)
    kernels = conv.kernel.value                                # (kh, kw, C_in, C_out)
    image = x_test[args.index:args.index + 1]                  # a batch of one: (1, 8, 8, 1)
    # The layer alone, on the image: its output is the feature maps (after its ReLU), (1, H, W, C_out).
    maps = conv(image)[0]
    predicted = int(model.predict(image).argmax())
    title = (f"{args.layer}: {kernels.shape[-1]} kernels {kernels.shape[0]}x{kernels.shape[1]} and their feature "
             f"maps for test digit {args.index} (label {y_test[args.index]}, predicted {predicted})")
    plot(kernels, image[0, :, :, 0], maps, title, args.out)
    print(f"kernels {kernels.shape}, feature maps {maps.shape}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
