#!/usr/bin/env python3
"""Writes the committed calibration images tests/data/calib/text_NN.png: 192x48 RGB, dark
glyph-like strokes on a light, slightly tinted background (a stand-in for cropped text lines, the
input of the PP-OCR direction classifier). Standard library only; deterministic (seeded).

With --pages N OUTDIR it writes N 640x640 "pages" instead (several such text lines pasted on
light paper, for the text detector); these are not committed (about 30 KB each)."""
import os, random, struct, sys, zlib

W, H = 192, 48

def png(path, rows, W=W, H=H):
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)

def render(rng, flip):
    bg = [rng.randint(200, 250) for _ in range(3)]
    ink = [rng.randint(10, 70)] * 3
    img = [[list(bg) for _ in range(W)] for _ in range(H)]
    def dot(x, y, r):
        for yy in range(int(y - r), int(y + r) + 1):
            for xx in range(int(x - r), int(x + r) + 1):
                if 0 <= xx < W and 0 <= yy < H and (xx - x) ** 2 + (yy - y) ** 2 <= r * r:
                    img[yy][xx] = list(ink)
    def line(x0, y0, x1, y1, r):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(n + 1):
            t = i / n
            dot(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, r)
    x = rng.randint(4, 14)
    top, bot = 10, 38
    r = rng.choice([1.0, 1.5])
    while x < W - 18:
        w = rng.randint(8, 14)
        # a glyph: a stem, a bar and one or two slanted strokes; a heavier base line on the
        # bottom ("upright" text) or the top (the 180-degree flipped class).
        line(x, top + rng.randint(0, 4), x + rng.randint(-2, 2), bot - rng.randint(0, 4), r)
        ym = rng.randint(top + 6, bot - 6)
        line(x, ym, x + w, ym + rng.randint(-3, 3), r)
        if rng.random() < 0.7:
            line(x + w, top + rng.randint(0, 8), x + rng.randint(0, w), bot, r)
        yb = top if flip else bot
        line(x - 1, yb, x + w + 1, yb, r + 0.5)
        x += w + rng.randint(4, 9)
    for _ in range(60):  # speckle noise
        px, py = rng.randrange(W), rng.randrange(H)
        img[py][px] = [max(0, min(255, c + rng.randint(-40, 40))) for c in img[py][px]]
    return [[c for p in row for c in p] for row in img]

def page(rng, size=640):
    paper = [rng.randint(215, 250) for _ in range(3)]
    img = [[list(paper) for _ in range(size)] for _ in range(size)]
    y = rng.randint(10, 40)
    while y < size - 60:
        x = rng.randint(10, 80)
        while x < size - 200 and rng.random() < 0.8:
            line = render(rng, flip=False)
            for yy in range(H):
                row = line[yy]
                for xx in range(W):
                    img[y + yy][x + xx] = row[3 * xx:3 * xx + 3]
            x += W + rng.randint(0, 40)
        y += H + rng.randint(8, 40)
    return [[c for p in row for c in p] for row in img]

USAGE = "usage: make_calib_images.py [OUT_DIR] | --pages N OUT_DIR"

def main():
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return
    if (args and args[0].startswith("-") and args[0] != "--pages") or (args[:1] == ["--pages"] and len(args) != 3) \
            or (args[:1] != ["--pages"] and len(args) > 1):
        sys.exit("make_calib_images.py: bad arguments %s; %s" % (" ".join(args), USAGE))
    if len(sys.argv) > 2 and sys.argv[1] == "--pages":
        n, out = int(sys.argv[2]), sys.argv[3]
        os.makedirs(out, exist_ok=True)
        rng = random.Random(7)
        for i in range(n):
            png(os.path.join(out, "page_%02d.png" % i), page(rng), 640, 640)
        return
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "calib")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(2026)
    for i in range(32):
        png(os.path.join(out, "text_%02d.png" % i), render(rng, flip=(i % 4 == 3)))

if __name__ == "__main__":
    main()
