"""What the GPU accuracy scripts share: one agreement measure and the synthetic inputs.

agreement(x, r): (cosine, max |x - r| / max |r|) of an output x against a reference r, float64.

synthetic_inputs(kind, n, seed): n inputs 3x224x224, float32, in [-1, 1):
- "uniform": every pixel independent, uniform in [-1, 1). Average pooling over 7x7 = 49 positions
  of such noise leaves almost nothing of one input that another lacks: a classifier's output
  then barely depends on its input (two inputs agree to 0.82-0.98 cosine on the torchvision
  models), and INT8's rounding is measured against that small part.
- "smooth": images with the spatial statistics of photographs, seeded: per channel a sum of
  bilinearly upsampled random grids of 2, 4, ..., 64 cells per side with amplitude halving per
  octave (about a 1/f spectrum), then a random brightness and contrast per image, clipped to
  [-1, 1). Inputs differ in their large structures, as real images do, so outputs differ too.
- "gratings": the images of train_synthetic.py's 10-class task: a sinusoidal grating whose
  orientation is the class (c * 18 degrees, +-4.5 jitter), of random frequency (3-12 cycles),
  phase, contrast and colour, over a smooth image of lower contrast.
"""
import numpy as np


def agreement(x, r):
    x, r = np.asarray(x, np.float64).ravel(), np.asarray(r, np.float64).ravel()
    rel = float(np.abs(x - r).max() / max(np.abs(r).max(), 1e-12))
    cos = float((x * r).sum() / max(np.sqrt((x * x).sum() * (r * r).sum()), 1e-300))
    return cos, rel


def _upsample(grid, size):
    """Bilinear upsampling of [C, g, g] to [C, size, size] (align corners), numpy only."""
    g = grid.shape[-1]
    pos = np.linspace(0, g - 1, size)
    i0 = np.clip(np.floor(pos).astype(int), 0, g - 2)
    f = pos - i0
    rows = grid[:, i0, :] * (1 - f)[None, :, None] + grid[:, i0 + 1, :] * f[None, :, None]
    return rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i0 + 1] * f[None, None, :]


def smooth_image(rng, size=224):
    img = np.zeros((3, size, size))
    for octave in range(1, 7):
        cells = 2 ** octave
        img += _upsample(rng.standard_normal((3, cells + 1, cells + 1)), size) / 2 ** octave
    img = (img - img.mean()) / (img.std() + 1e-12)
    img = img * rng.uniform(0.2, 0.6) + rng.uniform(-0.4, 0.4)  # contrast, brightness
    return np.clip(img.astype(np.float32), -1, np.nextafter(np.float32(1), np.float32(0)))


def gratings(rng, n, size=224):
    """n grating images and their classes (synthetic_inputs' "gratings")."""
    labels = rng.integers(0, 10, n)
    theta = labels * np.pi / 10 + rng.uniform(-np.pi / 40, np.pi / 40, n)
    freq = rng.uniform(3, 12, n) * 2 * np.pi / size
    phase = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        wave = np.cos((xx * np.cos(theta[i]) + yy * np.sin(theta[i])) * freq[i] + phase[i])
        colour = rng.uniform(-1, 1, 3) * rng.uniform(0.3, 0.7)
        img = colour[:, None, None] * wave[None] + 0.4 * smooth_image(rng, size)
        images[i] = np.clip(img, -1, np.nextafter(np.float32(1), np.float32(0)))
    return images, labels


def synthetic_inputs(kind, n, seed):
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(-1, 1, (n, 3, 224, 224)).astype(np.float32)
    if kind == "smooth":
        return np.stack([smooth_image(rng) for _ in range(n)])
    if kind == "gratings":
        return gratings(rng, n)[0]
    raise ValueError(f"unknown input kind '{kind}' (uniform | smooth | gratings)")
